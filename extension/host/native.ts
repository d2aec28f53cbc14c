// Typed access to the native addon (build/Release/pyramid_coder.node). Only processes that run the engine load it:
// the command line and the engine host, never the VS Code extension host itself.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export type MetadataValue = number | bigint | boolean | string | MetadataValue[];

export interface GgufTensorEntry {
  name: string;
  type: string;
  dims: number[];
  offset: number | bigint;
  bytes: number | bigint;
}

export interface GgufInspection {
  path: string;
  version: number;
  alignment: number | bigint;
  fileSize: number | bigint;
  dataOffset: number | bigint;
  metadata: Record<string, MetadataValue>;
  metadataTypes: Record<string, string>;
  tensors: GgufTensorEntry[];
}

export interface LlamaConfig {
  name: string;
  contextLength: number;
  dim: number;
  layers: number;
  ffnDim: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ropeDim: number;
  ropeFreqBase: number;
  rmsEps: number;
  vocabSize: number;
  tiedOutput: boolean;
}

export interface ModelInfo {
  path: string;
  fileSize: number;
  config: LlamaConfig;
  tokens: {
    bos: number | null;
    eos: number | null;
    eot: number | null;
    prefix: number | null;
    suffix: number | null;
    middle: number | null;
    addBos: boolean;
    count: number;
  };
  hasInfill: boolean;
}

export interface TokenizeOptions {
  /** Prepend BOS; defaults to the model's `tokenizer.ggml.add_bos_token`. */
  addBos?: boolean;
  /** Also recognise control tokens written literally in the text. */
  parseSpecial?: boolean;
  /** The SentencePiece leading-space rule; false tokenizes "without a leading space" (infill suffixes). */
  leadingSpace?: boolean;
}

export interface ChatTurn {
  user: string;
  assistant?: string;
}

export type InfillOrder = "spm" | "psm";

export interface KvLayerStats {
  tokens: number;
  bytes: number;
}

export type KvPolicyName = "full" | "pyramid" | "streaming" | "h2o";

/** A KV cache policy and its hyperparameters (PYRAMIDINFER.md); absent keys take the reference's 7B defaults. */
export interface KvPolicyOptions {
  policy?: KvPolicyName;
  /** > 0: the whole cache lands at this fraction of the full one (pyramid solves the decay; streaming/h2o keep it per layer). */
  targetRatio?: number;
  recentRatio?: number;
  decayRatio?: number;
  layerInterval?: number;
  minContext?: number;
  sinkTokens?: number;
  distanceWeight?: number;
  decodeCompression?: boolean;
  genDecayRatio?: number;
  genCompressRatio?: number;
  exceedLength?: number;
  /** > 0: no layer ever holds more rows (bounds memory in long generations). */
  maxLayerTokens?: number;
}

export interface KvStats {
  policy: KvPolicyName;
  bytes: number;
  fullBytes: number;
  tokens: number;
  /** pyramid: the schedule in use (targetRatio solved for the last prompt). */
  decayRatio: number;
  recentRatio: number;
  perLayer: KvLayerStats[];
}

export interface KvPlan {
  policy: KvPolicyName;
  tokens: number;
  /** The configuration with targetRatio resolved into the decay it needs. */
  config: Required<KvPolicyOptions>;
  perLayer: KvLayerStats[];
  bytes: number;
  fullBytes: number;
  ratio: number;
  /** False when a targetRatio is set and even the strongest schedule keeps more (shallow models, short prompts). */
  targetReached: boolean;
}

export interface GenerationTimings {
  promptTokens: number;
  reusedTokens: number;
  promptMs: number;
  genTokens: number;
  genMs: number;
}

export type StopReason = "eos" | "stop" | "length" | "context" | "cancelled";

export interface SamplingOptions {
  maxTokens?: number;
  /** 0 (the default) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  seed?: number;
  stop?: string[];
  /** Keep generating through EOS/EOT (benchmarks). */
  ignoreEos?: boolean;
}

export interface NativeGenerateResult {
  tokens: Int32Array;
  text: string;
  stopReason: StopReason;
  timings: GenerationTimings;
  kv: KvStats;
}

export interface SessionOptions {
  /** Tokens the session may hold; defaults to the model's context length. */
  contextSize?: number;
  /** Threads for this session's computation; defaults to the hardware threads. */
  threads?: number;
  /** The KV cache policy; full by default. */
  kv?: KvPolicyOptions;
}

export interface NativeSession {
  readonly contextSize: number;
  generate(
    prompt: Int32Array | number[],
    options?: SamplingOptions,
    onToken?: (token: number | null, text: string) => void,
  ): Promise<NativeGenerateResult>;
  evaluate(tokens: Int32Array | number[], options?: { logits?: "last" | "all" }): Promise<Float32Array>;
  /** log p(tokens[t] | tokens[0, t)) for t >= context: the context prefilled as one prompt, the rest fed as generation would. */
  logProbs(tokens: Int32Array | number[], context: number): Promise<Float64Array>;
  /** The cache after the last finished request. */
  kvStats(): KvStats;
  /** Stops the running request within one token. */
  cancel(): void;
  dispose(): void;
}

export interface NativeModel {
  readonly info: ModelInfo;
  tokenize(text: string, options?: TokenizeOptions): Promise<Int32Array>;
  detokenize(tokens: Int32Array | number[]): Promise<string>;
  /** Each token's text as a streaming decoder emits it: only complete UTF-8 characters. */
  tokenPieces(tokens: Int32Array | number[]): Promise<string[]>;
  infillPrompt(prefix: string, suffix: string, order?: InfillOrder): Promise<Int32Array>;
  chatPrompt(system: string, turns: ChatTurn[]): Promise<Int32Array>;
  createSession(options?: SessionOptions): Promise<NativeSession>;
  dispose(): void;
}

export interface NativeAddon {
  inspect(modelPath: string): Promise<GgufInspection>;
  loadModel(modelPath: string): Promise<NativeModel>;
  /** What a policy keeps for a prompt of `tokens` tokens in a model of `layers` layers and `kvDim` key width. */
  planKv(options: { layers: number; kvDim: number; tokens: number; kv?: KvPolicyOptions }): KvPlan;
}

/** The folder holding this package's package.json, found upwards from this module (bundled or not). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "pyramid-coder") return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the pyramid-coder package above ${__dirname}`);
    dir = parent;
  }
}

export function addonPath(root = packageRoot()): string {
  return path.join(root, "build", "Release", "pyramid_coder.node");
}

/** The demo model shipped in the repository: the default when neither --model nor PYRAMID_CODER_MODEL is given. */
export function demoModelPath(root = packageRoot()): string {
  return path.join(root, "media", "models", "tiny-code-q8_0.gguf");
}

let cachedAddon: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cachedAddon) return cachedAddon;
  const file = addonPath();
  if (!existsSync(file)) throw new Error(`the native engine is not built (${file} is missing): run \`npm install\``);
  cachedAddon = createRequire(file)(file) as NativeAddon;
  return cachedAddon;
}
