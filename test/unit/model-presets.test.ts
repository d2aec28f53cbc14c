// The download presets: the built-in CodeLlama list, user presets checked one by one (https only, a real checksum,
// a shape for the memory estimate), file names kept safe, and the list entry with size and memory at the context.
import { describe, expect, it } from "vitest";

import { DEFAULT_PRESETS, parsePresets, presetChoice, presetFileName, type ModelPreset } from "../../extension/core/model-presets";

const GIB = 2 ** 30;
const MINE: ModelPreset = {
  label: "My CodeLlama",
  url: "https://models.example.com/a/b/my-codellama.Q5_K_M.gguf",
  sha256: "ab".repeat(32),
  sizeBytes: 5 * GIB,
  kind: "instruct",
  layers: 32,
  kvDim: 4096,
};

describe("parsePresets", () => {
  it("offers CodeLlama 7B and 13B, base and Instruct, Q4_K_M, over https", () => {
    expect(parsePresets(undefined)).toEqual({ presets: DEFAULT_PRESETS, problems: [] });
    expect(DEFAULT_PRESETS.map((preset) => [preset.label, preset.kind])).toEqual([
      ["CodeLlama 7B Q4_K_M", "base"],
      ["CodeLlama 7B Instruct Q4_K_M", "instruct"],
      ["CodeLlama 13B Q4_K_M", "base"],
      ["CodeLlama 13B Instruct Q4_K_M", "instruct"],
    ]);
    for (const preset of DEFAULT_PRESETS) expect(new URL(preset.url).protocol).toBe("https:");
  });

  it("adds the setting's presets after the built-in ones, leaving out and naming each bad one", () => {
    const { presets, problems } = parsePresets([
      MINE,
      { ...MINE, url: "http://models.example.com/x.gguf" },
      { ...MINE, sha256: "1234" },
      { ...MINE, kind: "chat" },
      { ...MINE, layers: 0 },
      { ...MINE, label: "" },
      { ...MINE, url: "not a url" },
      "a string",
    ]);
    expect(presets).toEqual([...DEFAULT_PRESETS, MINE]);
    expect(problems).toEqual([
      "preset 2: url must be https (models are fetched only over https), not http:",
      "preset 3: sha256 must be 64 hexadecimal digits",
      'preset 4: kind must be "base" or "instruct"',
      "preset 5: layers must be a positive whole number",
      "preset 6: label must be a non-empty string",
      'preset 7: url "not a url" is not a URL',
      "preset 8: must be an object",
    ]);
    expect(parsePresets({ label: "x" }).problems).toEqual(["pyramidCoder.download.presets must be a list"]);
  });
});

describe("presetFileName", () => {
  it("is the URL's last segment, made safe for a file name", () => {
    expect(presetFileName(DEFAULT_PRESETS[0])).toBe("codellama-7b.Q4_K_M.gguf");
    expect(presetFileName({ ...MINE, url: "https://h/x/..%2F..%2Fevil%20model.gguf?download=1" })).toBe("_.._evil_model.gguf");
    expect(presetFileName({ ...MINE, url: "https://h/download" })).toBe("download.gguf");
  });
});

describe("presetChoice", () => {
  it("shows size, use and the memory at the context: weights plus the policy's KV against the full KV", () => {
    const choice = presetChoice(MINE, 4096, { policy: "pyramid", bytes: 1.5 * GIB, fullBytes: 2 * GIB });
    expect(choice).toEqual({
      label: "My CodeLlama",
      description: "5.0 GiB download · completion and Explain Selection",
      detail: "Needs ≈ 6.5 GiB at 4,096 tokens of context: weights 5.0 GiB + KV 1.5 GiB with pyramid (2.0 GiB full)",
    });
    expect(presetChoice({ ...MINE, kind: "base" }, 16384, { policy: "full", bytes: 8 * GIB, fullBytes: 8 * GIB }).detail).toBe(
      "Needs ≈ 13.0 GiB at 16,384 tokens of context: weights 5.0 GiB + KV 8.0 GiB",
    );
    expect(presetChoice(MINE, 4096, undefined).detail).toBe("Needs 5.0 GiB for the weights, plus a KV cache that could not be estimated");
  });
});
