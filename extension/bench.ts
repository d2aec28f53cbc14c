// `pyramid-coder bench`: our engine and llama.cpp (through node-llama-cpp's prebuilt CPU binaries) on the same GGUF
// in one run, with llama-bench's conventions: pp = prompt tokens processed in one batch after `depth` tokens of
// context, tg = tokens generated one at a time after `depth` tokens; random tokens; the median of the repetitions.
import path from "node:path";

import { fileTypeName } from "./core/model-type";
import { median } from "./core/stats";
import { Model } from "./host/engine";
import { loadAddon } from "./host/native";

export type BenchEngine = "pyramid-coder" | "llama.cpp";

export interface BenchOptions {
  modelPath: string;
  pp: number;
  tg: number;
  depths: number[];
  threads: number;
  repetitions: number;
  engines: BenchEngine[];
  policy: string;
  /** llama.cpp's flash attention: node-llama-cpp's default "auto", or forced on or off. */
  llamaFlashAttention?: "auto" | boolean;
}

export interface BenchRow {
  engine: BenchEngine;
  model: string;
  type: string;
  policy: string;
  threads: number;
  depth: number;
  pp: number;
  tg: number;
  pp_tok_s: number;
  tg_tok_s: number;
  kv_bytes: number;
  kv_full_bytes: number;
}

// Seeded random tokens above the special ids, like llama-bench's random prompts.
function randomTokens(count: number, vocab: number, seed: number): number[] {
  let state = seed >>> 0 || 1;
  const tokens: number[] = [];
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    tokens.push(259 + ((state >>> 0) % (vocab - 259)));
  }
  return tokens;
}

interface Measured {
  ppTokS: number;
  tgTokS: number;
  kvBytes: number;
  kvFullBytes: number;
}

async function benchOurs(model: Model, options: BenchOptions, depth: number, tokens: number[]): Promise<Measured[]> {
  const context = tokens.slice(0, depth);
  const promptBatch = tokens.slice(depth, depth + options.pp);
  const session = await model.createSession({ contextSize: depth + options.pp + options.tg + 1, threads: options.threads });
  try {
    // Warm-up: page the weights in, and fill the context once; every repetition reuses it.
    await session.generate({ tokens: [...context, tokens[tokens.length - 1]] }, { maxTokens: 2, ignoreEos: true });
    const runs: Measured[] = [];
    for (let rep = 0; rep < options.repetitions; rep++) {
      const pp = await session.generate({ tokens: [...context, ...promptBatch] }, { maxTokens: 0 });
      if (pp.timings.reusedTokens !== depth) throw new Error(`benchmark expected ${depth} reused tokens, got ${pp.timings.reusedTokens}`);
      // tg: the context plus one token the cache does not hold, then tg - 1 more: tg single-token decodes.
      const tg = await session.generate({ tokens: [...context, tokens[tokens.length - 1]] }, { maxTokens: options.tg, ignoreEos: true });
      const decodes = tg.timings.genTokens;
      runs.push({
        ppTokS: options.pp / (pp.timings.promptMs / 1000),
        tgTokS: decodes / ((tg.timings.promptMs + tg.timings.genMs) / 1000),
        kvBytes: tg.kv.bytes,
        kvFullBytes: tg.kv.fullBytes,
      });
    }
    return runs;
  } finally {
    session.dispose();
  }
}

async function benchLlamaCpp(options: BenchOptions, depth: number, tokens: number[]): Promise<Measured[]> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  type Token = import("node-llama-cpp").Token;
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error, progressLogs: false });
  const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: 0 });
  const contextSize = depth + options.pp + options.tg + 1;
  const context = await model.createContext({
    contextSize,
    batchSize: Math.max(options.pp, 1),
    threads: options.threads,
    sequences: 1,
    flashAttention: options.llamaFlashAttention ?? "auto",
  });
  try {
    const sequence = context.getSequence();
    // node-llama-cpp brands token ids; ours are plain vocabulary indices.
    const ids = tokens as unknown as Token[];
    const depthTokens = ids.slice(0, depth);
    const promptBatch = ids.slice(depth, depth + options.pp);
    const extraToken = ids[ids.length - 1];
    // Warm-up as for our engine: the weights paged in, the context filled once.
    await sequence.evaluateWithoutGeneratingNewTokens([...depthTokens, extraToken]);
    await sequence.eraseContextTokenRanges([{ start: depth, end: depth + 1 }]);
    const runs: Measured[] = [];
    for (let rep = 0; rep < options.repetitions; rep++) {
      let start = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(promptBatch);
      const ppMs = performance.now() - start;
      await sequence.eraseContextTokenRanges([{ start: depth, end: depth + options.pp }]);

      start = performance.now();
      const generator = sequence.evaluate([extraToken], { temperature: 0 });
      let decodes = 0;
      while (decodes < options.tg && !(await generator.next()).done) decodes++;
      await generator.return();
      const tgMs = performance.now() - start;
      await sequence.eraseContextTokenRanges([{ start: depth, end: sequence.nextTokenIndex }]);
      runs.push({ ppTokS: options.pp / (ppMs / 1000), tgTokS: decodes / (tgMs / 1000), kvBytes: NaN, kvFullBytes: NaN });
    }
    return runs;
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

export async function* runBench(options: BenchOptions): AsyncGenerator<BenchRow> {
  const inspection = await loadAddon().inspect(options.modelPath);
  const type = fileTypeName(inspection.metadata["general.file_type"]);
  const name = path.basename(options.modelPath);
  const model = await Model.load(options.modelPath);
  const vocab = model.info.config.vocabSize;
  const kvBytesPerToken = 2 * 2 * model.info.config.layers * model.info.config.kvHeads * model.info.config.headDim;
  try {
    for (const depth of options.depths) {
      const tokens = randomTokens(depth + options.pp + 1, vocab, 1234 + depth);
      for (const engine of options.engines) {
        const runs = engine === "pyramid-coder" ? await benchOurs(model, options, depth, tokens) : await benchLlamaCpp(options, depth, tokens);
        // llama.cpp keeps a full f16 cache: its bytes are the full cache's for the same tokens.
        const tokensHeld = depth + options.tg;
        const fullBytes = kvBytesPerToken * tokensHeld;
        yield {
          engine,
          model: name,
          type,
          policy: engine === "llama.cpp" ? "full" : options.policy,
          threads: options.threads,
          depth,
          pp: options.pp,
          tg: options.tg,
          pp_tok_s: median(runs.map((r) => r.ppTokS)),
          tg_tok_s: median(runs.map((r) => r.tgTokS)),
          kv_bytes: engine === "llama.cpp" ? fullBytes : median(runs.map((r) => r.kvBytes)),
          kv_full_bytes: engine === "llama.cpp" ? fullBytes : median(runs.map((r) => r.kvFullBytes)),
        };
      }
    }
  } finally {
    model.dispose();
  }
}

export function formatBenchTable(rows: BenchRow[]): string {
  const lines = [
    "| engine | model | type | policy | threads | depth | pp tok/s | tg tok/s | KV bytes | vs llama.cpp pp | vs llama.cpp tg |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const reference = rows.find((r) => r.engine === "llama.cpp" && r.depth === row.depth && r.model === row.model);
    const ratio = (ours: number, theirs?: number) => (theirs ? `${(ours / theirs).toFixed(2)}x` : "");
    lines.push(
      `| ${row.engine} | ${row.model} | ${row.type} | ${row.policy} | ${row.threads} | ${row.depth} | ${row.pp_tok_s.toFixed(1)} | ` +
        `${row.tg_tok_s.toFixed(2)} | ${(row.kv_bytes / 2 ** 20).toFixed(1)} MiB | ` +
        `${row.engine === "llama.cpp" ? "" : ratio(row.pp_tok_s, reference?.pp_tok_s)} | ${row.engine === "llama.cpp" ? "" : ratio(row.tg_tok_s, reference?.tg_tok_s)} |`,
    );
  }
  return lines.join("\n");
}
