// The command line as a user runs it: the bundled dist/cli.js, JSON on stdout, errors on stderr with exit codes.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const CLI = path.resolve(__dirname, "../dist/cli.js");
// A long source file (thousands of tokens) for the policies that need a long prompt before they drop anything.
const LONG_SOURCE = path.resolve(__dirname, "../extension/cli.ts");

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

  it("generate --json prints tokens, text, timings and the KV cache", () => {
    const run = cli(["generate", "--prompt", "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        ", "--max-tokens", "12", "--json"]);
    expect(run.stderr).toBe("");
    const result = JSON.parse(run.stdout);
    expect(result.tokens).toHaveLength(12);
    expect(result.text.startsWith('):\n    """Returns')).toBe(true);
    expect(result.timings).toMatchObject({ genTokens: 12, reusedTokens: 0 });
    expect(result.kv).toMatchObject({ policy: "full", perLayer: expect.any(Array) });
    expect(result.kv.bytes).toBe(result.kv.fullBytes);
  });

  it("generate --policy h2o --target-ratio 0.5 keeps half the cache of a long prompt", () => {
    const prompt = readFileSync(LONG_SOURCE, "utf8").slice(0, 2000);
    const run = cli(["generate", "--json", "--policy", "h2o", "--target-ratio", "0.5", "--max-tokens", "4", "--prompt", prompt]);
    expect(run.stderr).toBe("");
    const { kv, timings } = JSON.parse(run.stdout);
    expect(timings.promptTokens).toBeGreaterThan(256);
    expect(kv.policy).toBe("h2o");
    expect(kv.bytes).toBeLessThan(kv.fullBytes);
    expect(kv.bytes / kv.fullBytes).toBeLessThanOrEqual(0.55);
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

  it("perplexity --json scores the second half of BOS plus the first N-1 tokens", () => {
    const run = cli(["perplexity", "--file", source, "--ctx", "24", "--json"]);
    expect(run.stderr).toBe("");
    const result = JSON.parse(run.stdout);
    expect(Object.keys(result).slice(0, 4)).toEqual(["ppl", "tokens", "kv_bytes", "kv_full_bytes"]);
    expect(result).toMatchObject({ tokens: 24, scored: 11 });
    expect(result.ppl).toBeGreaterThan(1);
    expect(result.ppl).toBeLessThan(10_000);
    expect(result.kv_bytes).toBe(result.kv_full_bytes);
  });

  it("perplexity --policy pyramid scores the same tokens as full in a smaller cache", () => {
    const measure = (...policy: string[]) => {
      const run = cli(["perplexity", "--file", LONG_SOURCE, "--ctx", "256", "--json", ...policy]);
      expect(run.stderr).toBe("");
      return JSON.parse(run.stdout);
    };
    const full = measure();
    const pyramid = measure("--policy", "pyramid", "--target-ratio", "0.5");
    expect(Object.keys(pyramid).slice(0, 4)).toEqual(["ppl", "tokens", "kv_bytes", "kv_full_bytes"]);
    expect(pyramid).toMatchObject({ tokens: 256, scored: full.scored });
    expect(pyramid.ppl).toBeGreaterThan(1);
    expect(pyramid.ppl).toBeLessThan(10_000);
    expect(pyramid.kv_bytes).toBeLessThan(pyramid.kv_full_bytes);
  });

  it("plan prints the per-layer cache a policy keeps, non-increasing under pyramid", () => {
    const run = cli(["plan", "--tokens", "1024", "--policy", "pyramid"]);
    expect(run.stderr).toBe("");
    const plan = JSON.parse(run.stdout);
    expect(plan).toMatchObject({ policy: "pyramid", tokens: 1024, config: { policy: "pyramid", recentRatio: 0.2 } });
    expect(plan.perLayer).toHaveLength(6);
    const lengths: number[] = plan.perLayer.map((layer: { tokens: number }) => layer.tokens);
    expect(lengths[0]).toBe(1024);
    lengths.slice(1).forEach((length, i) => expect(length).toBeLessThanOrEqual(lengths[i]));
    expect(lengths[5]).toBeLessThan(1024);
    // Every layer's rows cost the same bytes; the whole is their sum, the full cache 6 layers of 1024 rows.
    const rowBytes = plan.perLayer[0].bytes / 1024;
    for (const layer of plan.perLayer) expect(layer.bytes).toBe(layer.tokens * rowBytes);
    expect(plan.bytes).toBe(lengths.reduce((sum, length) => sum + length, 0) * rowBytes);
    expect(plan.fullBytes).toBe(6 * 1024 * rowBytes);
    expect(plan.ratio).toBeCloseTo(plan.bytes / plan.fullBytes, 12);
  });

  it("plan --target-ratio lands the cache within the target", () => {
    const plan = (...flags: string[]) => JSON.parse(cli(["plan", "--tokens", "1024", ...flags]).stdout);
    expect(plan("--policy", "h2o", "--target-ratio", "0.5").ratio).toBeLessThanOrEqual(0.5);
    expect(plan("--policy", "streaming", "--target-ratio", "0.5").ratio).toBeLessThanOrEqual(0.5);
    // Six layers of cosine schedule keep at least ~68% however steep the decay, so pyramid's target here is 0.75.
    const pyramid = plan("--policy", "pyramid", "--target-ratio", "0.75");
    expect(pyramid.ratio).toBeLessThanOrEqual(0.75);
    expect(pyramid.config.decayRatio).toBeLessThan(0.9);
  });

  it("rejects bad KV flags: usage errors exit 2, the engine's range errors exit 1", () => {
    const badName = cli(["plan", "--tokens", "64", "--policy", "bogus"]);
    expect(badName.status).toBe(2);
    expect(badName.stderr).toMatch(/unknown KV policy "bogus": use full, pyramid, streaming, h2o/);
    const notNumber = cli(["generate", "--prompt", "x", "--policy", "pyramid", "--target-ratio", "half"]);
    expect(notNumber.status).toBe(2);
    expect(notNumber.stderr).toMatch(/--target-ratio must be a number, got "half"/);
    expect(cli(["plan", "--tokens", "64", "--policy", "h2o", "--sink-tokens", "1.5"]).stderr).toMatch(/--sink-tokens must be a whole number/);
    expect(cli(["plan", "--tokens", "64", "--target-ratio", "0.5"]).stderr).toMatch(/needs a compressing policy/);
    expect(cli(["generate", "--prompt", "x", "--policy", "full,pyramid"]).status).toBe(2);
    const outOfRange = cli(["generate", "--prompt", "x", "--policy", "pyramid", "--target-ratio", "2"]);
    expect(outOfRange.status).toBe(1);
    expect(outOfRange.stderr).toMatch(/^pyramid-coder: KV option targetRatio must be in \[0/);
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

  it("bench --policy full,pyramid --whole-prompt prints a row per policy", () => {
    // 272 tokens: enough context for pyramid to drop some (64 tokens or fewer would all be kept: minContext).
    const run = cli(["bench", "--json", "--policy", "full,pyramid", "--target-ratio", "0.75", "--whole-prompt", "--pp", "16", "--tg", "4",
      "--depth", "256", "--repetitions", "1", "--threads", "1", "--engines", "pyramid-coder"]);
    expect(run.stderr).toBe("");
    const rows = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(rows.map((row) => row.policy)).toEqual(["full", "pyramid@0.75"]);
    expect(rows[0].kv_bytes).toBe(rows[0].kv_full_bytes);
    expect(rows[1].kv_bytes).toBeLessThan(rows[1].kv_full_bytes);
  });
});
