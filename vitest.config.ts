import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds the sanitizer-instrumented native test executables once per run (incremental).
    globalSetup: ["test/support/global-setup.ts"],
    // Real engines and llama.cpp run in these tests; the machines have 2 cores.
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
