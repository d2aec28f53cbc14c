// Thousands of corrupted and truncated GGUF files through the whole load path (reader, llama validation,
// vocabulary, tokenizer) under ASan/UBSan: each must end in a clear error or a valid model, never a crash.
import { describe, expect, it } from "vitest";

import { demoModelPath } from "../../extension/host/native";
import { runNative } from "../support/native-tests";
import { SHAPES, testModelPath } from "../support/test-models";

function fuzz(seedFile: string, iterations: number, seed: number) {
  const run = runNative("engine/gguf_fuzz", [seedFile, "--iterations", String(iterations), "--seed", String(seed)], 600_000);
  expect(run.error).toBeUndefined();
  if (run.status !== 0) throw new Error(`gguf_fuzz exited with ${run.status ?? run.signal}:\n${run.output.slice(-4000)}`);
  const summary = /gguf_fuzz: (\d+) iterations, (\d+) rejected, (\d+) accepted/.exec(run.output);
  expect(summary).not.toBeNull();
  const [, total, rejected, accepted] = summary!.map(Number);
  expect(total).toBe(iterations);
  expect(rejected + accepted).toBe(iterations);
  // Most corruptions must be caught; some (a flipped weight byte) leave a valid model.
  expect(rejected).toBeGreaterThan(iterations / 4);
}

describe("GGUF fuzzing under ASan/UBSan", () => {
  it("rejects or accepts 2500 corruptions of a generated grouped-query Q4_K_M model", async () => {
    fuzz(await testModelPath({ ...SHAPES.tinyGqa, layers: 1, weightType: "Q4_K_M" }), 2500, 1);
  });

  it("rejects or accepts 500 corruptions of the trained demo model", () => {
    fuzz(demoModelPath(), 500, 2);
  });
});
