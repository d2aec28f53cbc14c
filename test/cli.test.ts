// The command line as a user runs it: the bundled dist/cli.js, JSON on stdout, errors on stderr with exit codes.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const CLI = path.resolve(__dirname, "../dist/cli.js");

function cli(args: string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", maxBuffer: 64 * 2 ** 20, env: { ...process.env, ...env } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe("pyramid-coder", () => {
  it("inspect prints metadata and the tensor table of the demo model by default", () => {
    const run = cli(["inspect"], { PYRAMID_CODER_MODEL: "" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.metadata["general.architecture"]).toBe("llama");
    expect(result.metadata["tokenizer.ggml.tokens"]).toMatchObject({ length: 32016 });
    expect(result.tensors).toHaveLength(57);
    expect(result.llama).toMatchObject({ layers: 6, hasInfill: true });
  });

  it("inspect --full prints whole arrays", () => {
    const result = JSON.parse(cli(["inspect", "--full", "--model", path.resolve(__dirname, "../media/models/tiny-code-q8_0.gguf")]).stdout);
    expect(result.metadata["tokenizer.ggml.tokens"]).toHaveLength(32016);
  });

  it("tokenize prints token ids with BOS as the model asks", () => {
    const run = cli(["tokenize", "def main():"]);
    expect(run.status).toBe(0);
    const tokens = JSON.parse(run.stdout);
    expect(tokens[0]).toBe(1);
    expect(tokens.length).toBeGreaterThan(2);
    expect(JSON.parse(cli(["tokenize", "--no-bos", "def main():"]).stdout)).toEqual(tokens.slice(1));
  });

  it("reports a bad model on stderr with exit code 1", () => {
    const run = cli(["tokenize", "--model", "/nonexistent/model.gguf", "x"]);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^pyramid-coder: .*\/nonexistent\/model\.gguf/);
  });

  it("reports usage errors with exit code 2", () => {
    expect(cli(["frobnicate"]).status).toBe(2);
    expect(cli(["tokenize"]).stderr).toMatch(/exactly one TEXT/);
    expect(cli(["inspect", "--bogus"]).status).toBe(2);
  });

  const scratch = mkdtempSync(path.join(tmpdir(), "pyramid-cli-"));
  const source = path.join(scratch, "lines.py");
  writeFileSync(source, "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        \n\n\nprint(read_lines('x'))\n");

  it("generate --json prints tokens, text and timings", () => {
    const run = cli(["generate", "--prompt", "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        ", "--max-tokens", "12", "--json"]);
    expect(run.stderr).toBe("");
    const result = JSON.parse(run.stdout);
    expect(result.tokens).toHaveLength(12);
    expect(result.text.startsWith('):\n    """Returns')).toBe(true);
    expect(result.timings).toMatchObject({ genTokens: 12, reusedTokens: 0 });
  });

  it("generate streams text without --json", () => {
    const run = cli(["generate", "--prompt", "def main():", "--max-tokens", "8"]);
    expect(run.status).toBe(0);
    expect(run.stdout.length).toBeGreaterThan(1);
  });

  it("complete fills in at FILE:LINE:COL (SPM infill) and reports timings with --json", () => {
    const run = cli(["complete", `${source}:6:9`, "--max-tokens", "16", "--json"]);
    expect(run.stderr).toBe("");
    const result = JSON.parse(run.stdout);
    expect(result.timings.promptTokens).toBeGreaterThan(20);
    expect(["eos", "length"]).toContain(result.stopReason);
  });

  it("complete rejects a position outside the file", () => {
    const run = cli(["complete", `${source}:99:1`]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/line 99 is outside the file/);
  });

  it("explain streams an answer for a line range", () => {
    const run = cli(["explain", `${source}:4-6`, "--max-tokens", "8"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
  });

  it("perplexity --json reports ppl over BOS plus the first N-1 tokens", () => {
    const run = cli(["perplexity", "--file", source, "--ctx", "24", "--json"]);
    expect(run.stderr).toBe("");
    const result = JSON.parse(run.stdout);
    expect(result.tokens).toBe(24);
    expect(result.ppl).toBeGreaterThan(1);
    expect(result.ppl).toBeLessThan(10_000);
    expect(result.kv_bytes).toBe(result.kv_full_bytes);
  });

  it("bench --json prints one row per engine and depth with llama-bench's fields", () => {
    const run = cli(["bench", "--pp", "16", "--tg", "4", "--depth", "0,8", "--repetitions", "1", "--threads", "1", "--json", "--llama-flash-attention", "off"]);
    expect(run.status).toBe(0);
    const rows = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(rows.map((r) => `${r.engine}@${r.depth}`)).toEqual(["pyramid-coder@0", "llama.cpp@0", "pyramid-coder@8", "llama.cpp@8"]);
    for (const row of rows) {
      expect(Object.keys(row).sort()).toEqual(
        ["depth", "engine", "kv_bytes", "kv_full_bytes", "model", "policy", "pp", "pp_tok_s", "threads", "tg", "tg_tok_s", "type"].sort(),
      );
      expect(row).toMatchObject({ model: "tiny-code-q8_0.gguf", type: "Q8_0", pp: 16, tg: 4, threads: 1 });
      expect(row.pp_tok_s).toBeGreaterThan(0);
      expect(row.tg_tok_s).toBeGreaterThan(0);
    }
    // After depth + tg tokens, a full cache holds them all in every layer.
    expect(rows[2].kv_bytes).toBe(rows[2].kv_full_bytes);
  });
});
