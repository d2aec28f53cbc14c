import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Real engines and llama.cpp run in these tests; the machines have 2 cores.
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/e2e/**"],
          // Builds the sanitizer-instrumented native test executables once per run (incremental).
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
      {
        // A real VS Code (code-server) in Chromium: after everything else, so that it has the cores to itself and
        // its `npm run package` never races the package test's.
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
