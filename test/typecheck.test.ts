// The TypeScript is strict, and esbuild bundles it without checking types: the checker runs here, over the extension,
// tests and benchmarks (tsconfig.json) and over the webviews' scripts against the message and view types they share
// with the extension (media/tsconfig.json).
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..");
const TSC = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");

describe("tsc", () => {
  it.each([".", "media"])("finds no type error in project %s", (project) => {
    const result = spawnSync(process.execPath, [TSC, "--noEmit", "--pretty", "false", "-p", project], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
