// pyramid-coder: the engine on the command line. Results go to stdout (JSON where asked), errors to stderr with
// exit code 1 (2 for a usage error).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { formatBenchTable, runBench, type BenchEngine, type BenchRow } from "./bench";
import { explainRequest, languageOfPath } from "./core/explain-prompt";
import { KV_FLAG_OPTIONS, KvFlagError, parseKvFlags } from "./core/kv-flags";
import { linesOf, parseFilePosition, parseFileRange, splitAtPosition } from "./core/text-position";
import { Model, planKv, type GenerateOptions, type GenerateResult, type Session } from "./host/engine";
import { demoModelPath, loadAddon, type KvPolicyOptions, type MetadataValue } from "./host/native";

class UsageError extends Error {}

const USAGE = `usage: pyramid-coder <command> [options]

commands:
  generate   --prompt TEXT [--max-tokens N] [--temperature T] [--json]   continue plain text (BOS added)
  complete   FILE:LINE:COL [--fim spm|psm] [--max-tokens N] [--json]      fill in at that point of the file
  explain    FILE[:START-END] [--max-tokens N]                             explain code (Instruct chat template)
  perplexity --file F [--ctx N] [--json]       BOS + the first N-1 tokens; the first half is context, the rest scored
  bench      [--pp 512] [--tg 128] [--depth 0,4096] [--threads N] [--repetitions 3] [--engines pyramid-coder,llama.cpp]
             [--policy full,pyramid,...] [--whole-prompt] [--llama-flash-attention auto|on|off] [--json]
  plan       --tokens N                                                    per-layer KV a policy keeps, as JSON
  inspect    [--full]                                                      metadata and tensor table as JSON
  tokenize   [--special] [--no-bos] TEXT                                   token ids as JSON (TEXT "-" reads stdin)

common options:
  --model M        a GGUF file (default: $PYRAMID_CODER_MODEL, then the demo model shipped with the package)
  --threads N      compute threads (default: all)      --ctx N   context size in tokens (default: the model's)
  sampling: --temperature T (0 = greedy, the default) --top-k K --top-p P --min-p P --repeat-penalty R --seed S --stop S

KV cache policy (generate, complete, explain, perplexity, bench, plan; bench takes a comma list, e.g. full,pyramid):
  --policy full|pyramid|streaming|h2o   full (the default) keeps every token and ignores the flags below
  --target-ratio R      the cache at this fraction of the full one: pyramid solves its decay for it, streaming and
                        h2o keep that share of every layer (0.5 when not given)
  --min-context N  --sink-tokens N  --max-layer-tokens N (no layer ever holds more rows)
  pyramid: --recent-ratio R --decay-ratio R --layer-interval N --distance-weight W, and while generating
           --no-decode-compression --gen-decay-ratio R --gen-compress-ratio R --exceed-length N`;

const OPTIONS = {
  model: { type: "string" },
  prompt: { type: "string" },
  file: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  threads: { type: "string" },
  ctx: { type: "string" },
  fim: { type: "string" },
  pp: { type: "string" },
  tg: { type: "string" },
  depth: { type: "string" },
  repetitions: { type: "string" },
  engines: { type: "string" },
  "llama-flash-attention": { type: "string" },
  "whole-prompt": { type: "boolean" },
  tokens: { type: "string" },
  ...KV_FLAG_OPTIONS,
  json: { type: "boolean" },
  full: { type: "boolean" },
  special: { type: "boolean" },
  "no-bos": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

function modelPath(options: Options): string {
  return options.model || process.env.PYRAMID_CODER_MODEL || demoModelPath();
}

function integer(options: Options, key: keyof Options, fallback: number, min = 0): number {
  const text = options[key];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`--${key} must be an integer >= ${min}, got "${text}"`);
  return value;
}

function real(options: Options, key: keyof Options): number | undefined {
  const text = options[key];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`--${key} must be a number, got "${text}"`);
  return value;
}

function samplingOptions(options: Options, maxTokens: number): GenerateOptions {
  const sampling: GenerateOptions = { maxTokens: integer(options, "max-tokens", maxTokens) };
  const set = <K extends keyof GenerateOptions>(key: K, value: GenerateOptions[K] | undefined) => {
    if (value !== undefined) sampling[key] = value;
  };
  set("temperature", real(options, "temperature"));
  set("topK", real(options, "top-k"));
  set("topP", real(options, "top-p"));
  set("minP", real(options, "min-p"));
  set("repeatPenalty", real(options, "repeat-penalty"));
  set("seed", real(options, "seed"));
  set("stop", options.stop);
  return sampling;
}

/**
 * The KV policies the flags name, each already checked by the engine's plan (so a range error stops the command
 * before any slow work, with the engine's message).
 */
function kvPolicies(options: Options): KvPolicyOptions[] {
  const policies = parseKvFlags(options);
  for (const kv of policies) planKv({ layers: 1, kvDim: 1, tokens: 0, kv });
  return policies;
}

function kvPolicy(options: Options): KvPolicyOptions {
  const policies = kvPolicies(options);
  if (policies.length !== 1) throw new UsageError("only bench takes several policies in --policy");
  return policies[0];
}

async function withSession<T>(options: Options, body: (model: Model, session: Session, kv: KvPolicyOptions) => Promise<T>): Promise<T> {
  const kv = kvPolicy(options);
  const model = await Model.load(modelPath(options));
  const sessionOptions: { threads?: number; contextSize?: number; kv: KvPolicyOptions } = { kv };
  if (options.threads !== undefined) sessionOptions.threads = integer(options, "threads", 0, 1);
  if (options.ctx !== undefined) sessionOptions.contextSize = integer(options, "ctx", 0, 1);
  const session = await model.createSession(sessionOptions);
  // Ctrl+C stops generation inside the native loop; the partial result is still printed.
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  process.once("SIGINT", onInterrupt);
  try {
    return await body(model, session, kv);
  } finally {
    process.removeListener("SIGINT", onInterrupt);
    session.dispose();
    model.dispose();
  }
}

function printResult(json: boolean, result: GenerateResult) {
  if (json) {
    const { tokens, text, stopReason, timings, kv } = result;
    process.stdout.write(JSON.stringify({ tokens: Array.from(tokens), text, stopReason, timings, kv }) + "\n");
  } else {
    process.stdout.write("\n");
  }
}

async function generate(options: Options): Promise<void> {
  if (options.prompt === undefined) throw new UsageError("generate needs --prompt TEXT");
  const prompt = options.prompt;
  await withSession(options, async (_model, session) => {
    const json = options.json ?? false;
    const result = await session.generate({ prompt }, {
      ...samplingOptions(options, 128),
      onToken: json ? undefined : (text) => process.stdout.write(text),
    });
    printResult(json, result);
  });
}

async function complete(options: Options, positionals: string[]): Promise<void> {
  if (positionals.length !== 1) throw new UsageError("complete takes one FILE:LINE:COL argument");
  const position = parseFilePosition(positionals[0]);
  const { prefix, suffix } = splitAtPosition(readFileSync(position.file, "utf8"), position.line, position.column);
  const format = options.fim ?? "spm";
  if (format !== "spm" && format !== "psm") throw new UsageError(`--fim must be spm or psm, got "${format}"`);
  await withSession(options, async (_model, session) => {
    const json = options.json ?? false;
    const result = await session.generate({ infill: { prefix, suffix, format } }, {
      ...samplingOptions(options, 128),
      onToken: json ? undefined : (text) => process.stdout.write(text),
    });
    printResult(json, result);
  });
}

async function explain(options: Options, positionals: string[]): Promise<void> {
  if (positionals.length !== 1) throw new UsageError("explain takes one FILE[:START-END] argument");
  const range = parseFileRange(positionals[0]);
  const code = linesOf(readFileSync(range.file, "utf8"), range.startLine, range.endLine);
  const request = explainRequest(code, languageOfPath(range.file));
  await withSession(options, async (_model, session) => {
    const result = await session.generate({ chat: { system: request.system, turns: [{ user: request.user }] } }, {
      ...samplingOptions(options, 512),
      onToken: options.json ? undefined : (text) => process.stdout.write(text),
    });
    printResult(options.json ?? false, result);
  });
}

async function perplexityCommand(options: Options): Promise<void> {
  if (!options.file) throw new UsageError("perplexity needs --file F");
  const text = readFileSync(options.file, "utf8");
  const ctx = integer(options, "ctx", 512, 2);
  await withSession(options, async (model, session) => {
    const body = await model.tokenize(text, { addBos: false });
    const bos = model.info.tokens.bos;
    if (bos === null) throw new Error("the model has no BOS token");
    const tokens = [bos, ...Array.from(body.subarray(0, ctx - 1))];
    // llama.cpp's perplexity convention: the first half of the window is context, the tokens after it are scored.
    // Under every policy the same tokens are scored, so the numbers compare: logProbs prefills the context as a
    // (compressed) prompt, then scores the rest as generation meets it (one batch under the full cache).
    const context = Math.floor(tokens.length / 2) + 1;
    const scored = tokens.length - context;
    if (scored < 1) throw new Error(`${options.file} has too few tokens to score (${tokens.length} in the window)`);
    const logProbs = await session.logProbs(tokens, context);
    const ppl = Math.exp(-logProbs.reduce((sum, logProb) => sum + logProb, 0) / scored);
    const cache = session.kvStats();
    if (options.json) {
      process.stdout.write(JSON.stringify({ ppl, tokens: tokens.length, kv_bytes: cache.bytes, kv_full_bytes: cache.fullBytes, scored }) + "\n");
    } else {
      process.stdout.write(`perplexity ${ppl.toFixed(4)} over ${scored} scored tokens after ${context} of context\n`);
    }
  });
}

async function bench(options: Options): Promise<void> {
  const engines = (options.engines ?? "pyramid-coder,llama.cpp").split(",").map((e) => e.trim());
  for (const engine of engines) {
    if (engine !== "pyramid-coder" && engine !== "llama.cpp") throw new UsageError(`unknown engine "${engine}"`);
  }
  const depths = (options.depth ?? "0").split(",").map((d) => {
    const value = Number(d);
    if (!Number.isInteger(value) || value < 0) throw new UsageError(`--depth takes integers, got "${d}"`);
    return value;
  });
  const flash = options["llama-flash-attention"] ?? "auto";
  if (flash !== "auto" && flash !== "on" && flash !== "off") throw new UsageError(`--llama-flash-attention takes auto, on or off`);
  const policies = kvPolicies(options);
  const rows: BenchRow[] = [];
  for await (const row of runBench({
    llamaFlashAttention: flash === "auto" ? "auto" : flash === "on",
    modelPath: modelPath(options),
    pp: integer(options, "pp", 512, 1),
    tg: integer(options, "tg", 128, 1),
    depths,
    threads: integer(options, "threads", 2, 1),
    repetitions: integer(options, "repetitions", 3, 1),
    engines: engines as BenchEngine[],
    policies,
    wholePrompt: options["whole-prompt"] ?? false,
  })) {
    rows.push(row);
    if (options.json) process.stdout.write(JSON.stringify(row) + "\n");
  }
  if (!options.json) process.stdout.write(formatBenchTable(rows) + "\n");
}

async function plan(options: Options): Promise<void> {
  if (options.tokens === undefined) throw new UsageError("plan needs --tokens N");
  const tokens = integer(options, "tokens", 0);
  const kv = kvPolicy(options);
  const model = await Model.load(modelPath(options));
  try {
    process.stdout.write(toJson(model.planKv(tokens, kv)) + "\n");
  } finally {
    model.dispose();
  }
}

// Long arrays (the 32k-entry vocabulary) are summarised unless --full: their length and first entries.
const SUMMARY_ITEMS = 8;

function summarise(value: MetadataValue, full: boolean): unknown {
  if (Array.isArray(value) && !full && value.length > 2 * SUMMARY_ITEMS) {
    return { length: value.length, first: value.slice(0, SUMMARY_ITEMS).map((item) => summarise(item, full)) };
  }
  return value;
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item) => (typeof item === "bigint" ? item.toString() : item), 2);
}

async function inspect(options: Options): Promise<void> {
  const addon = loadAddon();
  const file = modelPath(options);
  const inspection = await addon.inspect(file);
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(inspection.metadata)) metadata[key] = summarise(value, options.full ?? false);
  // The header may be a valid GGUF but not a model the engine can run: say why next to the table.
  let llama: unknown;
  try {
    const model = await addon.loadModel(file);
    llama = { ...model.info.config, hasInfill: model.info.hasInfill };
    model.dispose();
  } catch (error) {
    llama = { error: (error as Error).message };
  }
  process.stdout.write(toJson({ ...inspection, metadata, llama }) + "\n");
}

async function tokenize(options: Options, positionals: string[]): Promise<void> {
  if (positionals.length !== 1) throw new UsageError("tokenize takes exactly one TEXT argument (or - for stdin)");
  const text = positionals[0] === "-" ? readFileSync(0, "utf8") : positionals[0];
  const model = await loadAddon().loadModel(modelPath(options));
  try {
    const tokens = await model.tokenize(text, {
      parseSpecial: options.special ?? false,
      ...(options["no-bos"] ? { addBos: false } : {}),
    });
    process.stdout.write(JSON.stringify(Array.from(tokens)) + "\n");
  } finally {
    model.dispose();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const noPositionals = () => {
    if (positionals.length) throw new UsageError(`${command} takes no positional arguments (got ${positionals.join(" ")})`);
  };
  switch (command) {
    case "generate":
      noPositionals();
      return generate(values);
    case "complete":
      return complete(values, positionals);
    case "explain":
      return explain(values, positionals);
    case "perplexity":
      noPositionals();
      return perplexityCommand(values);
    case "bench":
      noPositionals();
      return bench(values);
    case "plan":
      noPositionals();
      return plan(values);
    case "inspect":
      noPositionals();
      return inspect(values);
    case "tokenize":
      return tokenize(values, positionals);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const usage = error instanceof UsageError || error instanceof KvFlagError;
  process.stderr.write(`pyramid-coder: ${(error as Error).message}\n${usage ? "\n" + USAGE + "\n" : ""}`);
  process.exitCode = usage ? 2 : 1;
});
