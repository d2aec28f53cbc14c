// Random-weight llama GGUF models in the shape of a converted CodeLLaMA file, for tests and
// benchmarks that need a model both llama.cpp and our engine can load. Weights are drawn so
// activations stay well-conditioned through any depth: matrices ~ N(0, 1/fan_in) keep each
// projection of an RMS-normalized vector at unit scale, the token embedding ~ N(0, 1/dim) gives
// unit-variance logits even when it doubles as the output matrix, and norm weights are 1 + noise.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { type GgmlTypeName, GGML_TYPES, QK_K } from "./ggml-types";
import { type GgufValue, type GgufWriteResult, writeGguf } from "./gguf-writer";
import { type RandomSource, dequantizeRow, isQuantizedType, quantizeRow, randomBlocks } from "./quantize";
import { CODELLAMA_TOKEN_IDS, codeLlamaVocab, LLAMA_VOCAB_SIZE } from "./vocab";

export type WeightType = GgmlTypeName | "Q4_K_M";

export interface ModelShape {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
}

export interface TestModelOptions extends ModelShape {
  weightType: WeightType;
  /** llama.context_length; default 4096. */
  contextLength?: number;
  /** Omit output.weight so llama.cpp reuses token_embd (tied embeddings). */
  tiedOutput?: boolean;
  /** Default 1. Each tensor draws from its own stream: with fill 'quantize', models that differ only in type share their underlying Gaussian values. */
  seed?: number;
  /**
   * 'quantize' (default): Gaussian floats encoded as the weight type.
   * 'random-blocks': random codes with scales set for the same spread; far faster, for large benchmark files.
   * Float weight types draw Gaussian values either way.
   */
  fill?: "quantize" | "random-blocks";
  /**
   * How infilling token ids are declared: 'legacy' tokenizer.ggml.{prefix,suffix,middle,eot}_token_id (default,
   * as the demo model), 'fim' tokenizer.ggml.fim_{pre,suf,mid}_token_id + eot_token_id, 'none' (found by token text;
   * llama.cpp then finds ▁<PRE>/▁<SUF>/▁<MID> but not ▁<EOT>, as it looks for "_<EOT>" with an ASCII underscore).
   */
  fimKeys?: "legacy" | "fim" | "none";
  /**
   * 'codellama' (default): LLaMA's 32000 tokens plus CodeLLaMA's 16, infill tokens included. 'llama': the 32000
   * alone, as in CodeLLaMA 34B and the Python variants, which cannot infill (no FIM keys are written).
   */
  vocab?: "codellama" | "llama";
  /** llama.rope.freq_base; default 10000 (CodeLLaMA itself uses 1e6). */
  ropeFreqBase?: number;
  /** general.name; defaults to a description of the shape and type. */
  name?: string;
  /**
   * Store, in weightType, the values this model would have in `dequantizedFrom` (same seed and fill),
   * decoded. Comparing the two files isolates the quantized kernels: their weights are equal.
   */
  dequantizedFrom?: WeightType;
}

/** Preset shapes. K-quants need every row length (dim, ffn) divisible by 256. */
export const SHAPES = {
  tinyMha: { dim: 256, layers: 2, heads: 4, kvHeads: 4, ffn: 512 },
  tinyGqa: { dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512 },
  tinyllama: { dim: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632 },
  codellama7bLike: { dim: 4096, layers: 32, heads: 32, kvHeads: 32, ffn: 11008 },
} as const satisfies Record<string, ModelShape>;

/** llama_ftype for general.file_type; a pure K-quant file is closest to the "_S" mix. */
const FILE_TYPES: Record<WeightType, number> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q4_K: 14, Q4_K_M: 15, Q5_K: 16, Q6_K: 18, BF16: 32,
};

/** GGML_QNT_VERSION, written by llama.cpp's converter and quantizer for quantized files. */
const QUANTIZATION_VERSION = 2;
const RMS_NORM_EPSILON = 1e-5;
const NORM_WEIGHT_NOISE = 0.1;
/** Elements generated per chunk: bounds memory for multi-gigabyte tensors. */
const CHUNK_ELEMENTS = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** 32-bit avalanche (MurmurHash3's finalizer), as an int32. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Small fast PRNG (sfc32) seeded from a string, with Gaussian draws. */
export class SeededRandom implements RandomSource {
  // Declared as integers and only ever assigned int32 values: V8 then keeps the state unboxed (4x faster
  // than uint32 or undefined-initialized fields, which it stores as heap doubles).
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private readonly pair = new Float64Array(2);

  constructor(seed: string | number) {
    const text = String(seed);
    const state = [0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x5be0cd19];
    for (let i = 0; i < text.length; i++) {
      for (let k = 0; k < 4; k++) state[k] = Math.imul(state[k]! ^ text.charCodeAt(i), 0x01000193 + 2 * k);
    }
    [this.a, this.b, this.c, this.d] = state.map((h, k) => mix32(h + k)) as [number, number, number, number];
    for (let i = 0; i < 16; i++) this.nextUint32(); // let the seed diffuse through the state
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** Two independent standard normal draws into this.pair (Marsaglia's polar form of Box-Muller: no trigonometry). */
  private drawGaussianPair(): void {
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.nextFloat() - 1;
      v = 2 * this.nextFloat() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const factor = Math.sqrt((-2 * Math.log(s)) / s);
    this.pair[0] = u * factor;
    this.pair[1] = v * factor;
  }

  /** Fills `out` with N(mean, std²) draws. */
  fillGaussian(out: Float32Array, mean: number, std: number): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      this.drawGaussianPair();
      out[i] = mean + std * this.pair[0]!;
      if (i + 1 < out.length) out[i + 1] = mean + std * this.pair[1]!;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor plan

type TensorRole =
  | "token_embd" | "output_norm" | "output"
  | "attn_norm" | "attn_q" | "attn_k" | "attn_v" | "attn_output" | "ffn_norm" | "ffn_gate" | "ffn_up" | "ffn_down";

interface PlannedTensor {
  name: string;
  role: TensorRole;
  /** Block index, or -1 for the global tensors. */
  layer: number;
  dims: number[];
}

function planTensors(o: ModelShape & { tiedOutput: boolean }, vocabSize: number): PlannedTensor[] {
  const kvDim = (o.dim / o.heads) * o.kvHeads;
  const global = (role: TensorRole, dims: number[]): PlannedTensor => ({ name: `${role}.weight`, role, layer: -1, dims });
  const plan = [global("token_embd", [o.dim, vocabSize]), global("output_norm", [o.dim])];
  if (!o.tiedOutput) plan.push(global("output", [o.dim, vocabSize]));
  const blockTensors: Array<[TensorRole, number[]]> = [
    ["attn_norm", [o.dim]],
    ["attn_q", [o.dim, o.dim]],
    ["attn_k", [o.dim, kvDim]],
    ["attn_v", [o.dim, kvDim]],
    ["attn_output", [o.dim, o.dim]],
    ["ffn_norm", [o.dim]],
    ["ffn_gate", [o.dim, o.ffn]],
    ["ffn_up", [o.dim, o.ffn]],
    ["ffn_down", [o.ffn, o.dim]],
  ];
  for (let layer = 0; layer < o.layers; layer++) {
    for (const [role, dims] of blockTensors) plan.push({ name: `blk.${layer}.${role}.weight`, role, layer, dims });
  }
  return plan;
}

function isNorm(role: TensorRole): boolean {
  return role === "output_norm" || role === "attn_norm" || role === "ffn_norm";
}

/** llama-quant.cpp's use_more_bits: the first and last eighth of the layers, and every third in between. */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.trunc(layers / 8);
  return layer < eighth || layer >= Math.trunc((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/** llama-quant.cpp's tensor_type_fallback, for the mix's types, when rows are not whole super-blocks. */
const FALLBACK_TYPES = { Q4_K: "Q5_0", Q6_K: "Q8_0" } as const;

function withFallback(type: keyof typeof FALLBACK_TYPES, rowLength: number): GgmlTypeName {
  if (rowLength % QK_K === 0) return type;
  const fallback = FALLBACK_TYPES[type];
  return rowLength % GGML_TYPES[fallback].blockSize === 0 ? fallback : "F16";
}

/**
 * The stored type of a tensor. Norms stay F32. Q4_K_M follows llama.cpp's llama_tensor_get_type:
 * Q4_K everywhere except Q6_K for output (or token_embd when it is the output) and for attn_v and
 * ffn_down on the use_more_bits layers.
 */
function tensorType(weightType: WeightType, tensor: PlannedTensor, layers: number, tiedOutput: boolean): GgmlTypeName {
  if (isNorm(tensor.role)) return "F32";
  if (weightType !== "Q4_K_M") return weightType;
  const isOutput = tensor.role === "output" || (tiedOutput && tensor.role === "token_embd");
  const moreBits = (tensor.role === "attn_v" || tensor.role === "ffn_down") && useMoreBits(tensor.layer, layers);
  return withFallback(isOutput || moreBits ? "Q6_K" : "Q4_K", tensor.dims[0]!);
}

function initialization(tensor: PlannedTensor, dim: number): { mean: number; std: number } {
  if (isNorm(tensor.role)) return { mean: 1, std: NORM_WEIGHT_NOISE };
  if (tensor.role === "token_embd") return { mean: 0, std: 1 / Math.sqrt(dim) };
  return { mean: 0, std: 1 / Math.sqrt(tensor.dims[0]!) };
}

/**
 * Tensor bytes in `storedType`, chunk by chunk. Values are generated in `sourceType` (Gaussian floats
 * encoded, or random blocks) and re-encoded when the two differ.
 */
function* tensorChunks(
  tensor: PlannedTensor,
  sourceType: GgmlTypeName,
  storedType: GgmlTypeName,
  fill: "quantize" | "random-blocks",
  init: { mean: number; std: number },
  random: SeededRandom,
): Generator<Uint8Array> {
  const rowLength = tensor.dims[0]!;
  const rows = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength));
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - row) * rowLength;
    const source = fill === "random-blocks" && isQuantizedType(sourceType)
      ? randomBlocks(sourceType, n / GGML_TYPES[sourceType].blockSize, init.std, random)
      : quantizeRow(sourceType, random.fillGaussian(new Float32Array(n), init.mean, init.std));
    yield sourceType === storedType ? source : quantizeRow(storedType, dequantizeRow(sourceType, source, n));
  }
}

// ---------------------------------------------------------------------------------------------
// Model files

type ResolvedOptions = Required<Omit<TestModelOptions, "dequantizedFrom">> & Pick<TestModelOptions, "dequantizedFrom">;

function resolveOptions(options: TestModelOptions): ResolvedOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as TestModelOptions;
  const resolved: ResolvedOptions = {
    contextLength: 4096,
    tiedOutput: false,
    seed: 1,
    fill: "quantize",
    fimKeys: "legacy",
    vocab: "codellama",
    ropeFreqBase: 10000,
    name: `random-llama-${options.dim}x${options.layers}-${options.weightType}`,
    ...given,
  };
  const { dim, heads, kvHeads } = resolved;
  if (dim % heads !== 0) throw new Error(`dim ${dim} is not divisible by heads ${heads}`);
  if (heads % kvHeads !== 0) throw new Error(`heads ${heads} is not divisible by kvHeads ${kvHeads}`);
  if ((dim / heads) % 2 !== 0) throw new Error(`head size ${dim / heads} must be even for RoPE`);
  return resolved;
}

function vocabFor(o: ResolvedOptions): ReturnType<typeof codeLlamaVocab> {
  const vocab = codeLlamaVocab();
  if (o.vocab === "codellama") return vocab;
  return { tokens: vocab.tokens.slice(0, LLAMA_VOCAB_SIZE), scores: vocab.scores.slice(0, LLAMA_VOCAB_SIZE), types: vocab.types.slice(0, LLAMA_VOCAB_SIZE) };
}

function metadataFor(o: ResolvedOptions, quantized: boolean): Array<[string, GgufValue]> {
  const vocab = vocabFor(o);
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const fimKeys: Array<[string, GgufValue]> =
    o.vocab === "llama" ? [] : o.fimKeys === "legacy" ? [
      ["tokenizer.ggml.prefix_token_id", u32(CODELLAMA_TOKEN_IDS.prefix)],
      ["tokenizer.ggml.suffix_token_id", u32(CODELLAMA_TOKEN_IDS.suffix)],
      ["tokenizer.ggml.middle_token_id", u32(CODELLAMA_TOKEN_IDS.middle)],
      ["tokenizer.ggml.eot_token_id", u32(CODELLAMA_TOKEN_IDS.eot)],
    ] : o.fimKeys === "fim" ? [
      ["tokenizer.ggml.fim_pre_token_id", u32(CODELLAMA_TOKEN_IDS.prefix)],
      ["tokenizer.ggml.fim_suf_token_id", u32(CODELLAMA_TOKEN_IDS.suffix)],
      ["tokenizer.ggml.fim_mid_token_id", u32(CODELLAMA_TOKEN_IDS.middle)],
      ["tokenizer.ggml.eot_token_id", u32(CODELLAMA_TOKEN_IDS.eot)],
    ] : [];
  return [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: o.name }],
    ["llama.vocab_size", u32(vocab.tokens.length)],
    ["llama.context_length", u32(o.contextLength)],
    ["llama.embedding_length", u32(o.dim)],
    ["llama.block_count", u32(o.layers)],
    ["llama.feed_forward_length", u32(o.ffn)],
    ["llama.rope.dimension_count", u32(o.dim / o.heads)],
    ["llama.attention.head_count", u32(o.heads)],
    ["llama.attention.head_count_kv", u32(o.kvHeads)],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: RMS_NORM_EPSILON }],
    ["llama.rope.freq_base", { type: "f32", value: o.ropeFreqBase }],
    ["general.file_type", u32(FILE_TYPES[o.weightType])],
    ...(quantized ? [["general.quantization_version", u32(QUANTIZATION_VERSION)] as [string, GgufValue]] : []),
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "array", elementType: "string", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "array", elementType: "f32", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "array", elementType: "i32", value: vocab.types }],
    ["tokenizer.ggml.bos_token_id", u32(CODELLAMA_TOKEN_IDS.bos)],
    ["tokenizer.ggml.eos_token_id", u32(CODELLAMA_TOKEN_IDS.eos)],
    ["tokenizer.ggml.unknown_token_id", u32(CODELLAMA_TOKEN_IDS.unk)],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
    ...fimKeys,
  ];
}

/** Writes a random-weight CodeLLaMA-shaped GGUF to `filePath` (directly: see testModelPath for a cached, atomic variant). */
export function writeTestModel(filePath: string, options: TestModelOptions): GgufWriteResult {
  const o = resolveOptions(options);
  const plan = planTensors(o, vocabFor(o).tokens.length);
  const tensors = plan.map((tensor) => {
    const type = tensorType(o.weightType, tensor, o.layers, o.tiedOutput);
    const sourceType = o.dequantizedFrom === undefined ? type : tensorType(o.dequantizedFrom, tensor, o.layers, o.tiedOutput);
    for (const t of [type, sourceType]) {
      if (tensor.dims[0]! % GGML_TYPES[t].blockSize !== 0) {
        throw new Error(`${tensor.name}: row length ${tensor.dims[0]} is not a multiple of the ${t} block (${GGML_TYPES[t].blockSize})` +
          (GGML_TYPES[t].blockSize === QK_K ? "; K-quants need dim and ffn divisible by 256" : ""));
      }
    }
    const random = new SeededRandom(`${o.seed}:${tensor.name}`);
    const init = initialization(tensor, o.dim);
    return { name: tensor.name, dims: tensor.dims, type, data: () => tensorChunks(tensor, sourceType, type, o.fill, init, random) };
  });
  const quantized = tensors.some((t) => isQuantizedType(t.type));
  return writeGguf(filePath, { metadata: metadataFor(o, quantized), tensors });
}

/**
 * The repository root: the nearest directory above this module holding test/support/test-models.ts.
 * Searched for rather than fixed relative to __dirname because benchmarks run this module bundled into build/.
 */
function repositoryRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "test", "support", "test-models.ts"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no repository with test/support/test-models.ts above ${__dirname}`);
  }
}

/** The modules whose code decides a model file's bytes: any change to them invalidates the cache. */
const GENERATOR_MODULES = ["ggml-types", "quantize", "gguf-writer", "vocab", "test-models"];

let generatorHash: string | undefined;

function hashGenerator(root: string): string {
  if (generatorHash === undefined) {
    const hash = createHash("sha256");
    for (const module of GENERATOR_MODULES) hash.update(fs.readFileSync(path.join(root, "test", "support", `${module}.ts`)));
    generatorHash = hash.digest("hex");
  }
  return generatorHash;
}

/**
 * Path of a cached model file for these options, generating it on first use. Files live under
 * test/.cache/models, keyed by the options and the generator's source; each is written under a
 * unique temporary name and renamed into place, so concurrent test workers never see a partial file.
 */
export function testModelPath(options: TestModelOptions): string {
  const resolved = resolveOptions(options);
  const root = repositoryRoot();
  const key = createHash("sha256")
    .update(JSON.stringify(Object.entries(resolved).sort(([a], [b]) => a.localeCompare(b))))
    .update(hashGenerator(root))
    .digest("hex")
    .slice(0, 16);
  const cacheDir = path.join(root, "test", ".cache", "models");
  const finalPath = path.join(cacheDir, `${resolved.name.replace(/[^\w.-]+/g, "_")}-${key}.gguf`);
  if (fs.existsSync(finalPath)) return finalPath;
  fs.mkdirSync(cacheDir, { recursive: true });
  const temporaryPath = `${finalPath}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeTestModel(temporaryPath, resolved);
    fs.renameSync(temporaryPath, finalPath);
  } catch (error) {
    fs.rmSync(temporaryPath, { force: true });
    throw error;
  }
  return finalPath;
}
