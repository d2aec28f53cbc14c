// The engine through the Node addon: loading, inspection, tokenizer calls, clear errors for bad files and bad
// arguments, and dispose() while work is in flight.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

import { demoModelPath, loadAddon } from "../../extension/host/native";
import { readGguf } from "../support/gguf-reader";
import { SHAPES, testModelPath } from "../support/test-models";

const addon = loadAddon();
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), "pyramid-addon-"));
});

function writeScratch(name: string, bytes: Uint8Array): string {
  const file = path.join(scratch, name);
  writeFileSync(file, bytes);
  return file;
}

describe("loading the demo model", () => {
  it("reads its configuration, vocabulary and infill tokens", async () => {
    const model = await addon.loadModel(demoModelPath());
    expect(model.info.config).toMatchObject({ dim: 192, layers: 6, heads: 6, kvHeads: 2, headDim: 32, ffnDim: 512, vocabSize: 32016 });
    expect(model.info.tokens).toMatchObject({ bos: 1, eos: 2, prefix: 32007, suffix: 32008, middle: 32009, eot: 32010, count: 32016 });
    expect(model.info.hasInfill).toBe(true);
    model.dispose();
  });

  it("inspects the header: metadata with types and the tensor table", async () => {
    const inspection = await addon.inspect(demoModelPath());
    expect(inspection.version).toBe(3);
    expect(inspection.metadata["general.architecture"]).toBe("llama");
    expect(inspection.metadataTypes["tokenizer.ggml.tokens"]).toBe("array<string>");
    expect(inspection.tensors).toHaveLength(57);
    expect(inspection.tensors[0]).toMatchObject({ name: "token_embd.weight", type: "Q8_0", dims: [192, 32016] });
  });
});

describe("infill token lookup", () => {
  it.each(["legacy", "fim", "none"] as const)("finds ▁<PRE>/▁<SUF>/▁<MID>/▁<EOT> with FIM keys spelled %s", async (fimKeys) => {
    const model = await addon.loadModel(await testModelPath({ ...SHAPES.tinyGqa, weightType: "Q4_0", fimKeys }));
    expect(model.info.tokens).toMatchObject({ prefix: 32007, suffix: 32008, middle: 32009, eot: 32010 });
    model.dispose();
  });
});

describe("bad files give clear errors", () => {
  let valid: Uint8Array;
  let header: ReturnType<typeof readGguf>;

  beforeAll(async () => {
    const file = await testModelPath({ ...SHAPES.tinyMha, weightType: "Q4_0" });
    valid = readFileSync(file);
    header = readGguf(file);
  });

  it("a missing file", async () => {
    await expect(addon.loadModel(path.join(scratch, "absent.gguf"))).rejects.toThrow(/absent\.gguf/);
  });

  it("a file that is not GGUF", async () => {
    await expect(addon.loadModel(writeScratch("text.gguf", Buffer.from("hello, this is not a model\n")))).rejects.toThrow(/not a GGUF file/i);
  });

  it("an unsupported version", async () => {
    const bytes = Uint8Array.from(valid.subarray(0, 4096));
    new DataView(bytes.buffer).setUint32(4, 7, true);
    await expect(addon.loadModel(writeScratch("v7.gguf", bytes))).rejects.toThrow(/version 7/);
  });

  it.each([10, 300, 0.5, 0.999])("a file truncated at %s (bytes, or a fraction of the file)", async (cut) => {
    const length = cut < 1 ? Math.floor(valid.length * cut) : cut;
    await expect(addon.loadModel(writeScratch(`cut-${cut}.gguf`, valid.subarray(0, length)))).rejects.toThrow(/truncated|past the end|end of the file/i);
  });

  it("a weight of a type the engine does not compute with, naming tensor and type", async () => {
    // Q4_0 and IQ4_NL blocks have the same size, so only the type changes, not the layout.
    const bytes = Uint8Array.from(valid);
    const tensor = header.tensors.find((t) => t.name === "blk.1.ffn_up.weight")!;
    new DataView(bytes.buffer).setUint32(tensor.typeFieldOffset, 20, true);
    await expect(addon.loadModel(writeScratch("iq4.gguf", bytes))).rejects.toThrow(/blk\.1\.ffn_up\.weight.*IQ4_NL/);
  });

  it("a missing tensor", async () => {
    const bytes = Uint8Array.from(valid);
    const tensor = header.tensors.find((t) => t.name === "blk.0.ffn_gate.weight")!;
    bytes[tensor.nameOffset + "blk.0.ffn_".length] = "x".charCodeAt(0); // now "blk.0.ffn_xate.weight"
    await expect(addon.loadModel(writeScratch("no-gate.gguf", bytes))).rejects.toThrow(/blk\.0\.ffn_gate\.weight/);
  });

  it("an engine error never takes the process down", async () => {
    const copy = path.join(scratch, "copy.gguf");
    copyFileSync(demoModelPath(), copy);
    const model = await addon.loadModel(copy);
    await expect(model.detokenize([1, 999_999])).rejects.toThrow(/999999/);
    model.dispose();
  });
});

describe("arguments and lifetime", () => {
  it("rejects wrong argument types with a TypeError", async () => {
    const model = await addon.loadModel(demoModelPath());
    expect(() => model.tokenize(42 as unknown as string)).toThrow(TypeError);
    expect(() => model.detokenize(["a"] as unknown as number[])).toThrow(TypeError);
    expect(() => model.infillPrompt("a", "b", "xyz" as "spm")).toThrow(/spm.*psm/);
    model.dispose();
  });

  it("finishes calls in flight after dispose() and rejects later calls", async () => {
    const model = await addon.loadModel(demoModelPath());
    const pending = model.tokenize("x = 1\n".repeat(50_000));
    model.dispose();
    expect((await pending).length).toBeGreaterThan(100_000);
    expect(() => model.tokenize("x")).toThrow(/disposed/);
  });
});
