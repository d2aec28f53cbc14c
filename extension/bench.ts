// `pyramid-coder bench`: our engine (under one or more KV policies) and llama.cpp (through node-llama-cpp's prebuilt
// CPU binaries) on the same GGUF in one run; random tokens; the median of the repetitions. Two conventions:
// - llama-bench's (default): pp = prompt tokens processed in one batch after `depth` tokens already cached, tg =
//   tokens generated one at a time after `depth` tokens.
// - whole prompt (`wholePrompt`): pp = a prompt of depth + pp tokens prefilled from an empty cache, reported as
//   (depth + pp) / time; tg = tokens generated after that prompt. PyramidInfer compresses a prompt as a whole, so
//   this is the convention under which policies compare: a cached depth would already be compressed.
import path from "node:path";

import { fileTypeName } from "./core/model-type";
import { median } from "./core/stats";
import { Model } from "./host/engine";
import { loadAddon, type KvPolicyOptions } from "./host/native";

export type BenchEngine = "pyramid-coder" | "llama.cpp";

/** The row label of a policy, e.g. "pyramid@0.45": its name, with the target ratio when one is set. */
export function policyLabel(kv: KvPolicyOptions): string {
  const name = kv.policy ?? "full";
  return kv.targetRatio ? `${name}@${kv.targetRatio}` : name;
}

export interface BenchOptions {
  modelPath: string;
  pp: number;
  tg: number;
  depths: number[];
  threads: number;
  repetitions: number;
  engines: BenchEngine[];
  /** Our engine runs once per policy (default: full). */
  policies?: KvPolicyOptions[];
  wholePrompt?: boolean;
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

async function benchOurs(model: Model, options: BenchOptions, kv: KvPolicyOptions, depth: number, tokens: number[]): Promise<Measured[]> {
  const context = tokens.slice(0, depth);
  const promptBatch = tokens.slice(depth, depth + options.pp);
  const sessionOptions = { contextSize: depth + options.pp + options.tg + 1, threads: options.threads, kv };
  const runs: Measured[] = [];
  if (options.wholePrompt) {
    // Warm-up pages the weights in; then each repetition prefills the whole prompt in a fresh session.
    const warm = await model.createSession(sessionOptions);
    await warm.generate({ tokens: promptBatch.slice(0, 8) }, { maxTokens: 2, ignoreEos: true }).finally(() => warm.dispose());
    for (let rep = 0; rep < options.repetitions; rep++) {
      const session = await model.createSession(sessionOptions);
      try {
        const result = await session.generate({ tokens: [...context, ...promptBatch] }, { maxTokens: options.tg, ignoreEos: true });
        // genMs runs from the first sampled token: it covers the genTokens - 1 decodes after it.
        runs.push({
          ppTokS: (depth + options.pp) / (result.timings.promptMs / 1000),
          tgTokS: (result.timings.genTokens - 1) / (result.timings.genMs / 1000),
          kvBytes: result.kv.bytes,
          kvFullBytes: result.kv.fullBytes,
        });
      } finally {
        session.dispose();
      }
    }
    return runs;
  }
  const session = await model.createSession(sessionOptions);
  try {
    // Warm-up: page the weights in, and fill the context once; every repetition reuses it.
    await session.generate({ tokens: [...context, tokens[tokens.length - 1]] }, { maxTokens: 2, ignoreEos: true });
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
      // Whole prompt: from an empty cache, the depth tokens included; otherwise after the cached depth.
      if (options.wholePrompt) await sequence.eraseContextTokenRanges([{ start: 0, end: sequence.nextTokenIndex }]);
      const prompt = options.wholePrompt ? [...depthTokens, ...promptBatch] : promptBatch;
      let start = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(prompt);
      const ppMs = performance.now() - start;
      if (!options.wholePrompt) await sequence.eraseContextTokenRanges([{ start: depth, end: depth + options.pp }]);

      start = performance.now();
      const generator = sequence.evaluate([options.wholePrompt ? promptBatch[promptBatch.length - 1] : extraToken], { temperature: 0 });
      let decodes = 0;
      while (decodes < options.tg && !(await generator.next()).done) decodes++;
      await generator.return();
      const tgMs = performance.now() - start;
      if (!options.wholePrompt) await sequence.eraseContextTokenRanges([{ start: depth, end: sequence.nextTokenIndex }]);
      runs.push({ ppTokS: prompt.length / (ppMs / 1000), tgTokS: decodes / (tgMs / 1000), kvBytes: NaN, kvFullBytes: NaN });
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
        const policies: KvPolicyOptions[] = engine === "llama.cpp" ? [{}] : (options.policies ?? [{}]);
        for (const kv of policies) {
          const runs = engine === "pyramid-coder" ? await benchOurs(model, options, kv, depth, tokens) : await benchLlamaCpp(options, depth, tokens);
          // llama.cpp keeps a full f16 cache: its bytes are the full cache's for the same tokens.
          const fullBytes = kvBytesPerToken * (depth + (options.wholePrompt ? options.pp : 0) + options.tg);
          yield {
            engine,
            model: name,
            type,
            policy: policyLabel(kv),
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
    }
  } finally {
    model.dispose();
  }
}

export function formatBenchTable(rows: BenchRow[]): string {
  const lines = [
    "| engine | model | type | policy | threads | depth | pp tok/s | tg tok/s | KV bytes | KV of full | vs llama.cpp pp | vs llama.cpp tg | vs our full pp | vs our full tg |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const peer = (engine: BenchEngine, policy: string) =>
      rows.find((r) => r.engine === engine && r.policy === policy && r.depth === row.depth && r.model === row.model);
    const ratio = (ours: number, theirs?: number) => (theirs ? `${(ours / theirs).toFixed(2)}x` : "");
    const ours = row.engine === "pyramid-coder";
    const llama = ours ? peer("llama.cpp", "full") : undefined;
    const full = ours && row.policy !== "full" ? peer("pyramid-coder", "full") : undefined;
    lines.push(
      `| ${row.engine} | ${row.model} | ${row.type} | ${row.policy} | ${row.threads} | ${row.depth} | ${row.pp_tok_s.toFixed(1)} | ` +
        `${row.tg_tok_s.toFixed(2)} | ${(row.kv_bytes / 2 ** 20).toFixed(1)} MiB | ${((100 * row.kv_bytes) / row.kv_full_bytes).toFixed(1)}% | ` +
        `${ratio(row.pp_tok_s, llama?.pp_tok_s)} | ${ratio(row.tg_tok_s, llama?.tg_tok_s)} | ` +
        `${ratio(row.pp_tok_s, full?.pp_tok_s)} | ${ratio(row.tg_tok_s, full?.tg_tok_s)} |`,
    );
  }
  return lines.join("\n");
}
