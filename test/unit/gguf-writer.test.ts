// The GGUF writer and reader, the CodeLLaMA vocabulary and the generated test models. The decisive check is
// llama.cpp's: a model in each type gives the same logits as the same weights decoded by our dequantizer and
// stored as F32, so our block layouts are the ones ggml reads (a wrong layout gives unrelated logits).
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import type { ControlledEvaluateInputItem, Token } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";

import { GGML_TYPE_NAMES, type GgmlTypeName } from "../support/ggml-types";
import { metadataValue, readGguf, readTensorData } from "../support/gguf-reader";
import { type GgufValue, writeGguf } from "../support/gguf-writer";
import { referenceLlama } from "../support/llama-cpp";
import { dequantizeRow, quantizeRow } from "../support/quantize";
import { SHAPES, SeededRandom, type TestModelOptions, type WeightType, testModelPath, writeTestModel } from "../support/test-models";
import { CODELLAMA_TOKEN_IDS, codeLlamaVocab } from "../support/vocab";

const DEMO_MODEL = "/work/shared/models/tiny-code-q8_0.gguf";
/** "def fibonacci(n):" after BOS, as llama.cpp tokenizes it with the CodeLLaMA vocabulary. */
const PROMPT = [1, 822, 18755, 265, 21566, 29898, 29876, 1125];

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "gguf-writer-test-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function scratchPath(name: string): string {
  return path.join(scratch, name);
}

/** Metadata values as plain JS data (typed arrays as arrays, 64-bit integers as bigint), for comparisons. */
function plain(value: GgufValue): unknown {
  const is64 = (type: string) => type === "u64" || type === "i64";
  if (value.type !== "array") return is64(value.type) ? BigInt(value.value as number | bigint) : value.value;
  if (value.elementType === "array") return Array.from(value.value, plain);
  const wide = is64(value.elementType);
  return Array.from(value.value as ArrayLike<unknown>, (v) => (wide ? BigInt(v as number | bigint) : v));
}

describe("GGUF writer and reader", () => {
  const metadata: Array<[string, GgufValue]> = [
    ["t.u8", { type: "u8", value: 255 }],
    ["t.i8", { type: "i8", value: -128 }],
    ["t.u16", { type: "u16", value: 65535 }],
    ["t.i16", { type: "i16", value: -32768 }],
    ["t.u32", { type: "u32", value: 0xffffffff }],
    ["t.i32", { type: "i32", value: -0x80000000 }],
    ["t.f32", { type: "f32", value: 1.5 }],
    ["t.bool", { type: "bool", value: true }],
    ["t.string", { type: "string", value: "▁<PRE> ünïcødé 🦙" }],
    ["t.empty_string", { type: "string", value: "" }],
    ["t.u64", { type: "u64", value: (1n << 64n) - 1n }],
    ["t.i64", { type: "i64", value: -(1n << 63n) }],
    ["t.i64_number", { type: "i64", value: -5 }],
    ["t.f64", { type: "f64", value: Math.PI }],
    ["t.strings", { type: "array", elementType: "string", value: ["a", "", "▁b"] }],
    ["t.f32s", { type: "array", elementType: "f32", value: Float32Array.from([0.25, -1e30]) }],
    ["t.bools", { type: "array", elementType: "bool", value: [false, true] }],
    ["t.u64s", { type: "array", elementType: "u64", value: [0n, 7] }],
    ["t.empty", { type: "array", elementType: "i32", value: [] }],
    ["t.nested", {
      type: "array",
      elementType: "array",
      value: [
        { type: "array", elementType: "u8", value: [1, 2] },
        { type: "array", elementType: "array", value: [{ type: "array", elementType: "string", value: ["deep"] }] },
      ],
    }],
  ];

  it("writes a known header byte for byte", () => {
    const file = scratchPath("golden.gguf");
    writeGguf(file, { metadata: [["a", { type: "u32", value: 7 }]], tensors: [] });
    const bytes = fs.readFileSync(file);
    expect([...bytes]).toEqual([
      ...Buffer.from("GGUF"), 3, 0, 0, 0, // magic, version
      0, 0, 0, 0, 0, 0, 0, 0, // tensor count
      1, 0, 0, 0, 0, 0, 0, 0, // metadata count
      1, 0, 0, 0, 0, 0, 0, 0, 0x61, // key "a"
      4, 0, 0, 0, 7, 0, 0, 0, // u32 7
      ...new Array(64 - 41).fill(0), // padding to the default alignment, 32
    ]);
  });

  it("round-trips every value type, nested arrays and tensors of every type", () => {
    const file = scratchPath("all-types.gguf");
    const tensors = GGML_TYPE_NAMES.map((type, i) => {
      const dims = type.endsWith("_K") ? [256, 3] : type.startsWith("Q") ? [64, 2, 3] : [5, 3, 2, 1];
      const count = dims.reduce((a, b) => a * b);
      const values = new SeededRandom(`tensor:${type}`).fillGaussian(new Float32Array(count), 0, 1);
      return { name: `tensor.${i}.${type}`, dims, type, data: quantizeRow(type, values) };
    });
    const result = writeGguf(file, { version: 2, alignment: 64, metadata, tensors });

    const read = readGguf(file);
    expect(read.version).toBe(2);
    expect(read.alignment).toBe(64);
    expect(read.dataOffset % 64).toBe(0);
    expect(read.dataOffset).toBe(result.dataOffset);
    expect(read.fileBytes).toBe(result.fileBytes);
    expect(fs.statSync(file).size).toBe(result.fileBytes);
    expect([...read.metadata.keys()]).toEqual([...metadata.map(([key]) => key), "general.alignment"]);
    for (const [key, value] of metadata) {
      const back = read.metadata.get(key)!;
      expect(back.type).toBe(value.type);
      expect(plain(back), key).toEqual(plain(value));
    }
    expect(read.metadata.get("general.alignment")).toEqual({ type: "u32", value: 64 });
    expect(read.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(tensors.map((t) => [t.name, t.dims, t.type]));
    for (const [i, tensor] of read.tensors.entries()) {
      expect(tensor.offset % 64).toBe(0);
      expect([...readTensorData(read, tensor.name)]).toEqual([...tensors[i]!.data]);
    }
  });

  it("streams tensor data from producers, in chunks, padding each tensor to the alignment", () => {
    const file = scratchPath("chunks.gguf");
    let produced = 0;
    writeGguf(file, {
      metadata: [],
      tensors: [
        { name: "a", dims: [3], type: "F32", data: () => { produced++; return [Uint8Array.of(1, 2, 3, 4), new Uint8Array(8).fill(9)]; } },
        { name: "b", dims: [1], type: "F16", data: () => { produced++; return Uint8Array.of(5, 6); } },
      ],
    });
    expect(produced).toBe(2);
    const read = readGguf(file);
    expect(read.alignment).toBe(32);
    expect(read.metadata.has("general.alignment")).toBe(false);
    expect(read.tensors.map((t) => t.offset)).toEqual([0, 32]);
    expect([...readTensorData(read, "a")]).toEqual([1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]);
    expect([...readTensorData(read, "b")]).toEqual([5, 6]);
    expect(read.fileBytes).toBe(read.dataOffset + 64);
  });

  it("rejects inconsistent input", () => {
    const file = scratchPath("bad.gguf");
    const tensor = { name: "w", dims: [32, 2], type: "Q8_0" as const, data: new Uint8Array(68) };
    expect(() => writeGguf(file, { metadata: [], tensors: [{ ...tensor, data: new Uint8Array(67) }] })).toThrow(/needs 68 bytes, got 67/);
    expect(() => writeGguf(file, { metadata: [], tensors: [{ ...tensor, dims: [31, 2] }] })).toThrow(/multiple of 32/);
    expect(() => writeGguf(file, { metadata: [], tensors: [tensor, tensor] })).toThrow(/duplicate tensor name/);
    expect(() => writeGguf(file, { metadata: [], tensors: [{ ...tensor, name: "x".repeat(64) }] })).toThrow(/name too long/);
    expect(() => writeGguf(file, { metadata: [["k", { type: "u8", value: 256 }]], tensors: [] })).toThrow(RangeError);
    expect(() => writeGguf(file, { metadata: [["k", { type: "i32", value: 1.5 }]], tensors: [] })).toThrow(RangeError);
    expect(() => writeGguf(file, { metadata: [["k", { type: "u64", value: -1n }]], tensors: [] })).toThrow(RangeError);
    expect(() => writeGguf(file, { alignment: 24, metadata: [], tensors: [] })).toThrow(/power of two/);
    expect(() =>
      writeGguf(file, { alignment: 64, metadata: [["general.alignment", { type: "u32", value: 32 }]], tensors: [] }),
    ).toThrow(/contradicts/);
  });

  it("reads the demo model: its tensors lie inside the file", () => {
    const demo = readGguf(DEMO_MODEL);
    expect(demo.version).toBe(3);
    expect(metadataValue(demo, "general.architecture")).toBe("llama");
    expect(demo.tensors.length).toBe(3 + 6 * 9);
    for (const tensor of demo.tensors) {
      expect(tensor.type).toBeDefined();
      expect(tensor.fileOffset + tensor.byteLength!).toBeLessThanOrEqual(demo.fileBytes);
    }
    // Offsets the engine's corruption tests rely on.
    const bytes = fs.readFileSync(DEMO_MODEL);
    const tensor = demo.tensors[5]!;
    expect(bytes.toString("utf8", tensor.nameOffset, tensor.nameOffset + tensor.name.length)).toBe(tensor.name);
    expect(bytes.readUInt32LE(tensor.typeFieldOffset)).toBe(tensor.typeId);
  });
});

describe("CodeLLaMA vocabulary", () => {
  it("equals the demo model's for all 32016 tokens: strings, scores and types", () => {
    const demo = readGguf(DEMO_MODEL);
    const tokens = metadataValue(demo, "tokenizer.ggml.tokens") as string[];
    const scores = metadataValue(demo, "tokenizer.ggml.scores") as Float32Array;
    const types = metadataValue(demo, "tokenizer.ggml.token_type") as Int32Array;
    const vocab = codeLlamaVocab();
    expect(vocab.tokens.length).toBe(32016);
    expect(vocab.tokens).toEqual(tokens);
    expect(vocab.scores).toEqual(scores);
    expect(vocab.types).toEqual(types);
  });

  it("follows the documented conventions", () => {
    const { tokens, scores, types } = codeLlamaVocab();
    const at = (id: number) => [tokens[id], scores[id], types[id]];
    expect(at(0)).toEqual(["<unk>", 0, 2]);
    expect(at(1)).toEqual(["<s>", 0, 3]);
    expect(at(3)).toEqual(["<0x00>", 0, 6]);
    expect(at(258)).toEqual(["<0xFF>", 0, 6]);
    expect(at(259)).toEqual(["▁▁", -61248, 1]);
    expect(at(260)).toEqual(["▁t", 0, 1]);
    expect(at(261)).toEqual(["er", -1, 1]);
    expect(at(31999)).toEqual(["给", -1031999, 1]);
    expect(at(32000)).toEqual(["<unused32000>", 0, 4]);
    expect(at(CODELLAMA_TOKEN_IDS.prefix)).toEqual(["▁<PRE>", 0, 3]);
    expect(at(CODELLAMA_TOKEN_IDS.eot)).toEqual(["▁<EOT>", 0, 3]);
    expect(at(32015)).toEqual(["<unused32015>", 0, 4]);
  });
});

/** llama.cpp's logits for the token after `tokens`. */
async function llamaCppLogits(modelPath: string, tokens: readonly number[]): Promise<Float32Array> {
  const model = await (await referenceLlama()).loadModel({ modelPath });
  try {
    const context = await model.createContext({ contextSize: 64, batchSize: 16, threads: 2 });
    try {
      const last = tokens.length - 1;
      const input: ControlledEvaluateInputItem[] = tokens.map((token, i) =>
        i === last ? [token as Token, { generateNext: { logits: true } }] : (token as Token),
      );
      const output = await context.getSequence().controlledEvaluate(input);
      const logits = new Float32Array(codeLlamaVocab().tokens.length).fill(NaN);
      for (const [token, logit] of output[last]!.next.logits!) logits[token] = logit;
      return logits;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** Normalized squared error sum (a - b)^2 / sum b^2, as llama.cpp's test-backend-ops. */
function normalizedError(a: Float32Array, b: Float32Array): number {
  let error = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    error += (a[i]! - b[i]!) ** 2;
    norm += b[i]! ** 2;
  }
  return error / norm;
}

function spread(logits: Float32Array): { finite: boolean; std: number } {
  const mean = logits.reduce((a, b) => a + b, 0) / logits.length;
  const variance = logits.reduce((a, b) => a + (b - mean) ** 2, 0) / logits.length;
  return { finite: logits.every(Number.isFinite), std: Math.sqrt(variance) };
}

/** The types we expect the generator to store, written out independently of its own logic. */
function expectedTensorType(weightType: WeightType, name: string, tiedOutput: boolean, q6kLayers: readonly number[]): GgmlTypeName {
  if (name.endsWith("norm.weight")) return "F32";
  if (weightType !== "Q4_K_M") return weightType;
  if (name === "output.weight" || (tiedOutput && name === "token_embd.weight")) return "Q6_K";
  const layer = /^blk\.(\d+)\.(attn_v|ffn_down)\./.exec(name);
  return layer && q6kLayers.includes(Number(layer[1])) ? "Q6_K" : "Q4_K";
}

describe("generated test models", () => {
  const weightTypes: WeightType[] = [...GGML_TYPE_NAMES, "Q4_K_M"];
  // The F32 comparison proves the block layouts, which do not depend on the shape: it runs once for
  // Gaussian weights and once for random blocks (whose scale fields, negative ones included, are set differently).
  const configurations = [
    { label: "tinyMha", shape: SHAPES.tinyMha, tiedOutput: false, fill: "quantize" as const, compareWithF32: true },
    { label: "tinyGqa", shape: SHAPES.tinyGqa, tiedOutput: false, fill: "quantize" as const, compareWithF32: false },
    { label: "tinyGqa with tied output", shape: SHAPES.tinyGqa, tiedOutput: true, fill: "quantize" as const, compareWithF32: false },
    { label: "tinyMha from random blocks", shape: SHAPES.tinyMha, tiedOutput: false, fill: "random-blocks" as const, compareWithF32: true },
  ];
  const cases = configurations.flatMap((configuration) =>
    weightTypes
      // Float types are Gaussian under either fill: the random-block variant would repeat the first configuration.
      .filter((type) => configuration.fill === "quantize" || !["F32", "F16", "BF16"].includes(type))
      .map((type) => [type, configuration.label, configuration] as const),
  );

  it.each(cases)("%s, %s: llama.cpp loads it; logits are finite, spread (and equal those of the same weights in F32)", async (weightType, _, c) => {
    const options: TestModelOptions = { ...c.shape, weightType, tiedOutput: c.tiedOutput, fill: c.fill };
    const file = scratchPath(`model-${weightType}.gguf`);
    const reference = scratchPath(`model-${weightType}-as-f32.gguf`);
    writeTestModel(file, options);
    try {
      const header = readGguf(file);
      const names = header.tensors.map((t) => t.name);
      expect(names.includes("output.weight")).toBe(!c.tiedOutput);
      expect(names.length).toBe(2 + (c.tiedOutput ? 0 : 1) + 9 * c.shape.layers);
      for (const tensor of header.tensors) {
        // Two layers: use_more_bits holds for layer 1 only (i >= 7n/8 = 1).
        expect(tensor.type, tensor.name).toBe(expectedTensorType(weightType, tensor.name, c.tiedOutput, [1]));
      }

      const logits = await llamaCppLogits(file, PROMPT);
      const { finite, std } = spread(logits);
      expect(finite).toBe(true);
      expect(std).toBeGreaterThan(0.5);
      if (c.compareWithF32) {
        // Observed 1e-6 to 1e-3: llama.cpp quantizes activations for quantized matmuls. Unrelated weights give ~2.
        writeTestModel(reference, { ...options, weightType: "F32", dequantizedFrom: weightType });
        expect(normalizedError(logits, await llamaCppLogits(reference, PROMPT))).toBeLessThan(1e-2);
      }
    } finally {
      fs.rmSync(file, { force: true });
      fs.rmSync(reference, { force: true });
    }
  });

  it("the F32 comparison discriminates: a different seed gives unrelated logits", async () => {
    const a = scratchPath("seed-1.gguf");
    const b = scratchPath("seed-2.gguf");
    writeTestModel(a, { ...SHAPES.tinyGqa, weightType: "Q4_K_M" });
    writeTestModel(b, { ...SHAPES.tinyGqa, weightType: "F32", dequantizedFrom: "Q4_K_M", seed: 2 });
    expect(normalizedError(await llamaCppLogits(a, PROMPT), await llamaCppLogits(b, PROMPT))).toBeGreaterThan(0.5);
  });

  it("Q4_K_M puts Q6_K on attn_v and ffn_down in llama.cpp's use_more_bits layers", () => {
    const file = scratchPath("q4km-16.gguf");
    writeTestModel(file, { ...SHAPES.tinyMha, layers: 16, weightType: "Q4_K_M", fill: "random-blocks" });
    // n = 16: layers below n/8 = 2, from 7n/8 = 14, and those with (i - 2) % 3 == 2.
    const q6kLayers = [0, 1, 4, 7, 10, 13, 14, 15];
    for (const tensor of readGguf(file).tensors) {
      expect(tensor.type, tensor.name).toBe(expectedTensorType("Q4_K_M", tensor.name, false, q6kLayers));
    }
    expect(metadataValue(readGguf(file), "general.file_type")).toBe(15);
  });

  it("Q4_K_M falls back as llama.cpp does when rows are not whole super-blocks, and such a model loads", async () => {
    const file = scratchPath("q4km-192.gguf");
    writeTestModel(file, { dim: 192, layers: 2, heads: 6, kvHeads: 2, ffn: 512, weightType: "Q4_K_M" });
    const types = new Map(readGguf(file).tensors.map((t) => [t.name, t.type]));
    expect(types.get("token_embd.weight")).toBe("Q5_0"); // Q4_K -> Q5_0
    expect(types.get("output.weight")).toBe("Q8_0"); // Q6_K -> Q8_0
    expect(types.get("blk.1.attn_v.weight")).toBe("Q8_0");
    expect(types.get("blk.0.ffn_down.weight")).toBe("Q4_K"); // rows of 512 need no fallback
    expect(types.get("blk.1.ffn_down.weight")).toBe("Q6_K");
    expect(spread(await llamaCppLogits(file, PROMPT)).finite).toBe(true);
  });

  it("K-quants refuse rows that are not whole super-blocks", () => {
    expect(() => writeTestModel(scratchPath("bad.gguf"), { dim: 192, layers: 1, heads: 6, kvHeads: 2, ffn: 512, weightType: "Q4_K" })).toThrow(
      /divisible by 256/,
    );
    expect(() => writeTestModel(scratchPath("bad.gguf"), { ...SHAPES.tinyMha, heads: 3, weightType: "F16" })).toThrow(/divisible by heads/);
  });

  it("carries a converted CodeLLaMA file's metadata", () => {
    const file = scratchPath("metadata.gguf");
    writeTestModel(file, { ...SHAPES.tinyGqa, weightType: "Q8_0", contextLength: 16384, ropeFreqBase: 1e6, name: "codellama-test" });
    const header = readGguf(file);
    const value = (key: string) => metadataValue(header, key);
    expect(value("general.architecture")).toBe("llama");
    expect(value("general.name")).toBe("codellama-test");
    expect(value("general.file_type")).toBe(7);
    expect(value("general.quantization_version")).toBe(2);
    expect(value("llama.context_length")).toBe(16384);
    expect(value("llama.embedding_length")).toBe(256);
    expect(value("llama.block_count")).toBe(2);
    expect(value("llama.feed_forward_length")).toBe(512);
    expect(value("llama.rope.dimension_count")).toBe(64);
    expect(value("llama.rope.freq_base")).toBe(1e6);
    expect(value("llama.attention.head_count")).toBe(4);
    expect(value("llama.attention.head_count_kv")).toBe(2);
    expect(value("llama.attention.layer_norm_rms_epsilon")).toBe(Math.fround(1e-5));
    // The tokenizer block is the demo model's, key for key.
    const demo = readGguf(DEMO_MODEL);
    for (const [key, entry] of demo.metadata) {
      if (key.startsWith("tokenizer.")) expect(plain(header.metadata.get(key)!), key).toEqual(plain(entry));
    }
    expect([...header.metadata.keys()].filter((k) => k.startsWith("tokenizer.")).sort()).toEqual(
      [...demo.metadata.keys()].filter((k) => k.startsWith("tokenizer.")).sort(),
    );
  });

  // Without keys llama.cpp finds the FIM markers by text, but not EOT: it looks for "_<EOT>" (ASCII underscore), not "▁<EOT>".
  it.each(["legacy", "fim", "none"] as const)("FIM keys '%s': llama.cpp finds the infilling tokens", async (fimKeys) => {
    const file = scratchPath(`fim-${fimKeys}.gguf`);
    writeTestModel(file, { ...SHAPES.tinyGqa, weightType: "Q8_0", fill: "random-blocks", fimKeys });
    const keys = [...readGguf(file).metadata.keys()];
    expect(keys.includes("tokenizer.ggml.prefix_token_id")).toBe(fimKeys === "legacy");
    expect(keys.includes("tokenizer.ggml.fim_pre_token_id")).toBe(fimKeys === "fim");
    expect(keys.includes("tokenizer.ggml.eot_token_id")).toBe(fimKeys !== "none");
    const model = await (await referenceLlama()).loadModel({ modelPath: file, vocabOnly: true });
    try {
      expect([model.tokens.infill.prefix, model.tokens.infill.suffix, model.tokens.infill.middle, model.tokens.eot]).toEqual([
        CODELLAMA_TOKEN_IDS.prefix, CODELLAMA_TOKEN_IDS.suffix, CODELLAMA_TOKEN_IDS.middle, fimKeys === "none" ? null : CODELLAMA_TOKEN_IDS.eot,
      ]);
    } finally {
      await model.dispose();
    }
  });

  it("llama.cpp tokenizes with a generated model exactly as with the demo model", async () => {
    const file = scratchPath("tokenizer.gguf");
    writeTestModel(file, { ...SHAPES.tinyGqa, weightType: "Q8_0", fill: "random-blocks" });
    const llama = await referenceLlama();
    const [generated, demo] = await Promise.all([file, DEMO_MODEL].map((modelPath) => llama.loadModel({ modelPath, vocabOnly: true })));
    try {
      for (const text of ["def fibonacci(n):\n    return n", "  \t\tindent\r\n", "naïve café 日本語 🦙", "<PRE> not special", ""]) {
        expect(generated!.tokenize(text)).toEqual(demo!.tokenize(text));
      }
      expect(generated!.tokenize("def fibonacci(n):")).toEqual(PROMPT.slice(1));
    } finally {
      await Promise.all([generated!.dispose(), demo!.dispose()]);
    }
  });

  it("is deterministic, and models of different types share their Gaussian weights", () => {
    const digest = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    const options: TestModelOptions = { dim: 256, layers: 1, heads: 4, kvHeads: 2, ffn: 512, weightType: "Q4_K_M" };
    for (const [name, extra] of [["a", {}], ["b", {}], ["c", { seed: 2 }], ["f32", { weightType: "F32" }]] as const) {
      writeTestModel(scratchPath(`det-${name}.gguf`), { ...options, ...extra });
    }
    expect(digest(scratchPath("det-a.gguf"))).toBe(digest(scratchPath("det-b.gguf")));
    expect(digest(scratchPath("det-a.gguf"))).not.toBe(digest(scratchPath("det-c.gguf")));

    const tensorValues = (file: string, name: string) => {
      const header = readGguf(file);
      const tensor = header.tensors.find((t) => t.name === name)!;
      return dequantizeRow(tensor.type!, readTensorData(header, name), tensor.dims[0]! * tensor.dims[1]!);
    };
    const quantized = tensorValues(scratchPath("det-a.gguf"), "blk.0.ffn_up.weight");
    const exact = tensorValues(scratchPath("det-f32.gguf"), "blk.0.ffn_up.weight");
    let error = 0;
    let norm = 0;
    for (let i = 0; i < exact.length; i++) {
      error += (quantized[i]! - exact[i]!) ** 2;
      norm += exact[i]! ** 2;
    }
    expect(error / norm).toBeLessThan(0.02); // Q4_K's error on the same Gaussian values, not an unrelated draw (2.0)
    expect(Math.sqrt(norm / exact.length)).toBeCloseTo(1 / Math.sqrt(256), 2); // N(0, 1/fan_in)
  });

  it("testModelPath caches each configuration once, under test/.cache/models", () => {
    const options: TestModelOptions = { dim: 64, layers: 1, heads: 2, kvHeads: 1, ffn: 128, weightType: "Q8_0", name: "cache-test" };
    const file = testModelPath(options);
    expect(file).toMatch(/test\/\.cache\/models\/cache-test-[0-9a-f]{16}\.gguf$/);
    const written = fs.statSync(file).mtimeMs;
    expect(testModelPath({ ...options, seed: 1, fill: "quantize" })).toBe(file); // explicit defaults: same key
    expect(fs.statSync(file).mtimeMs).toBe(written);
    expect(testModelPath({ ...options, seed: 3 })).not.toBe(file);
    // No temporary file of this process is left behind (other test workers may be writing theirs right now).
    const ours = (f: string) => f.startsWith("cache-test-") && f.includes(`.${process.pid}.`) && f.endsWith(".tmp");
    expect(fs.readdirSync(path.dirname(file)).filter(ours)).toEqual([]);
    expect(readGguf(file).tensors.length).toBe(3 + 9);
  });

  it("a TinyLlama-shaped Q4_0 benchmark file from random blocks runs in llama.cpp", async () => {
    const file = scratchPath("tinyllama-q4_0.gguf");
    const { fileBytes } = writeTestModel(file, { ...SHAPES.tinyllama, weightType: "Q4_0", fill: "random-blocks" });
    try {
      expect(fileBytes).toBeGreaterThan(600e6);
      const { finite, std } = spread(await llamaCppLogits(file, PROMPT));
      expect(finite).toBe(true);
      expect(std).toBeGreaterThan(0.5);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
