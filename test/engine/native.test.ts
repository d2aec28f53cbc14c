// The engine's own C++ tests (one executable beside each module), built with ASan and UBSan.
import { describe, expect, it } from "vitest";

import { runNative } from "../support/native-tests";

const SUITES = [
  "engine/gguf_test",
  "engine/llama_config_test",
  "engine/tokenizer_test",
  "engine/prompt_test",
  "engine/sampler_test",
  "engine/session_test",
  "engine/kv_policy_test",
  "kernels/weight_kernels_test",
  "kernels/kquant_kernels_test",
  "kernels/thread_pool_test",
  "kernels/matmul_test",
  "kernels/ops_test",
  "kernels/repacked_test",
];

describe.each(SUITES)("native %s under ASan/UBSan", (name) => {
  it("passes every case", () => {
    const run = runNative(name);
    expect(run.error).toBeUndefined();
    if (run.status !== 0) throw new Error(`${name} exited with ${run.status ?? run.signal}:\n${run.output}`);
    expect(run.output).toMatch(/^\d+ passed, 0 failed$/m);
  });
});
