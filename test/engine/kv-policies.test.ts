// KV policies through the real engine: PyramidInfer's per-layer lengths on a generated 32-layer model with the 7B
// defaults equal PYRAMIDINFER.md's golden lists (and the pure plan), the policy with nothing to drop is bit-identical
// to the full cache, budgets land where the plan says, and compression is checked against the full cache on the
// trained demo model.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Model, planKv } from "../../extension/host/engine";
import { demoModelPath, packageRoot, type KvPolicyOptions } from "../../extension/host/native";
import { testModelPath } from "../support/test-models";

const GOLDEN: Record<number, number[]> = {
  2048: [2048, 2048, 2047, 2045, 2041, 2034, 2024, 2010, 1991, 1967, 1938, 1904, 1864, 1819, 1769, 1714, 1655, 1592,
    1527, 1460, 1392, 1324, 1256, 1190, 1126, 1064, 1006, 951, 900, 852, 808, 768],
  1024: [1024, 1024, 1023, 1022, 1020, 1016, 1011, 1004, 994, 982, 967, 950, 930, 907, 882, 854, 824, 793, 760, 726,
    692, 658, 624, 591, 559, 528, 499, 472, 446, 422, 400, 380],
};

// Seeded tokens above the special ids.
function randomTokens(count: number, seed: number): number[] {
  let state = seed;
  const tokens = [1];
  while (tokens.length < count) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    tokens.push(259 + (state % 31000));
  }
  return tokens;
}

const layerTokens = (stats: { perLayer: { tokens: number }[] }) => stats.perLayer.map((layer) => layer.tokens);

describe("PyramidInfer on a generated 32-layer model with the 7B defaults", () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(
      testModelPath({ dim: 64, layers: 32, heads: 4, kvHeads: 2, ffn: 128, weightType: "F16", contextLength: 4096 }),
    );
  });
  afterAll(() => model?.dispose());

  it.each([1024, 2048])("keeps the golden per-layer lengths after a %i-token prompt, as the plan predicts", async (n) => {
    const session = await model.createSession({ threads: 2, kv: { policy: "pyramid" } });
    await session.evaluate(randomTokens(n, n));
    const stats = session.kvStats();
    expect(layerTokens(stats)).toEqual(GOLDEN[n]);
    expect(layerTokens(model.planKv(n, { policy: "pyramid" }))).toEqual(GOLDEN[n]);
    const rowBytes = 2 * 2 * 2 * 16;  // K and V, 2 KV heads of 16 dims, f16
    expect(stats.bytes).toBe(GOLDEN[n].reduce((a, b) => a + b) * rowBytes);
    expect(stats.fullBytes).toBe(32 * n * rowBytes);
    session.dispose();
  });

  it("lands at the target ratio the plan solved for, and stays bounded by the per-layer cap while generating", async () => {
    const n = 2048;
    const session = await model.createSession({ threads: 2, kv: { policy: "pyramid", targetRatio: 0.45, maxLayerTokens: 1500 } });
    const result = await session.generate({ tokens: randomTokens(n, 7) }, { maxTokens: 40, ignoreEos: true });
    const plan = model.planKv(n, { policy: "pyramid", targetRatio: 0.45 });
    expect(plan.ratio).toBeLessThanOrEqual(0.45);
    expect(plan.ratio).toBeGreaterThan(0.43);
    expect(plan.targetReached).toBe(true);
    // The cap cuts the first layers (which keep nearly everything) below the solved schedule.
    expect(Math.max(...layerTokens(model.planKv(n, { policy: "pyramid", targetRatio: 0.45, maxLayerTokens: 1500 })))).toBe(1500);
    expect(result.kv.decayRatio).toBeCloseTo(plan.config.decayRatio, 12);
    expect(Math.max(...layerTokens(result.kv))).toBeLessThanOrEqual(1500);
    // 40 generated tokens on top of the plan: the recent window holds them until they are compressed in chunks.
    expect(result.kv.bytes / result.kv.fullBytes).toBeLessThan(0.47);
    session.dispose();
  });

  it.each<KvPolicyOptions>([
    { policy: "streaming", targetRatio: 0.3 },
    { policy: "h2o", targetRatio: 0.3 },
  ])("keeps the $policy budget in every layer", async (kv) => {
    const session = await model.createSession({ threads: 2, kv });
    await session.evaluate(randomTokens(1000, 3));
    expect(layerTokens(session.kvStats())).toEqual(Array(32).fill(300));
    expect(layerTokens(model.planKv(1000, kv))).toEqual(Array(32).fill(300));
    session.dispose();
  });
});

describe("pyramid with nothing to drop equals the full cache bit for bit", () => {
  const identity: KvPolicyOptions = { policy: "pyramid", decayRatio: 1, decodeCompression: false };

  it.each([
    ["a generated 32-layer model", () => testModelPath({ dim: 64, layers: 32, heads: 4, kvHeads: 2, ffn: 128, weightType: "Q8_0", contextLength: 4096 })],
    ["the trained demo model", () => demoModelPath()],
  ])("on %s: logits, greedy tokens and teacher-forced log-probabilities", async (_name, file) => {
    const model = await Model.load(file());
    const tokens = randomTokens(600, 11);
    const run = async (kv: KvPolicyOptions) => {
      const session = await model.createSession({ contextSize: 1024, threads: 2, kv });
      const logits = await session.evaluate(tokens);
      const generated = await session.generate({ tokens }, { maxTokens: 24, ignoreEos: true });
      const logProbs = await session.logProbs(tokens, 500);
      session.dispose();
      return { logits, tokens: Array.from(generated.tokens), logProbs, kv: generated.kv };
    };
    const full = await run({ policy: "full" });
    const pyramid = await run(identity);
    expect(pyramid.kv.policy).toBe("pyramid");
    expect(Buffer.from(pyramid.logits.buffer).equals(Buffer.from(full.logits.buffer))).toBe(true);
    expect(pyramid.tokens).toEqual(full.tokens);
    expect(Buffer.from(pyramid.logProbs.buffer).equals(Buffer.from(full.logProbs.buffer))).toBe(true);
    model.dispose();
  });
});

describe("compression against the full cache on the trained demo model", () => {
  let model: Model;
  let tokens: number[];
  beforeAll(async () => {
    model = await Model.load(demoModelPath());
    const source = readFileSync(path.join(packageRoot(), "engine", "session.cc"), "utf8");
    tokens = Array.from(await model.tokenize(source)).slice(0, 512);
  });
  afterAll(() => model?.dispose());

  const perplexity = (logProbs: Float64Array) => Math.exp(-logProbs.reduce((a, b) => a + b, 0) / logProbs.length);

  // The model uses little context beyond its last ~32 tokens (models/README.md): every policy should score close to
  // the full cache; a broken selection (wrong rows, wrong positions) would not.
  it.each<KvPolicyOptions>([
    { policy: "pyramid", targetRatio: 0.7 },
    { policy: "streaming", targetRatio: 0.5 },
    { policy: "h2o", targetRatio: 0.5 },
  ])("$policy at $targetRatio scores the next 64 tokens within 10% of the full cache's perplexity", async (kv) => {
    const full = await model.createSession({ contextSize: 512, threads: 2 });
    const compressed = await model.createSession({ contextSize: 512, threads: 2, kv });
    const reference = perplexity(await full.logProbs(tokens, 448));
    const measured = perplexity(await compressed.logProbs(tokens, 448));
    const stats = compressed.kvStats();
    expect(stats.bytes).toBeLessThan(0.8 * stats.fullBytes);
    expect(Math.abs(measured / reference - 1)).toBeLessThan(0.1);
    full.dispose();
    compressed.dispose();
  });

  it("reuses the cached entries before the first changed position in every layer", async () => {
    const kv: KvPolicyOptions = { policy: "pyramid", targetRatio: 0.7 };
    const session = await model.createSession({ contextSize: 512, threads: 2, kv });
    const first = await session.generate({ tokens: tokens.slice(0, 440) }, { maxTokens: 4 });
    expect(first.timings.reusedTokens).toBe(0);
    // An edit at token 400: everything before it is reused in every layer, the rest is computed again.
    const edited = [...tokens.slice(0, 400), ...tokens.slice(401, 450)];
    const second = await session.generate({ tokens: edited }, { maxTokens: 4 });
    expect(second.timings.reusedTokens).toBe(400);
    const fresh = await model.createSession({ contextSize: 512, threads: 2, kv });
    const expected = await fresh.generate({ tokens: edited }, { maxTokens: 4 });
    // The reused rows were selected for the earlier prompt, so the cache differs from a fresh prefill's, but it
    // holds the same tokens' worth of text and stays compressed.
    expect(second.kv.bytes).toBeLessThan(second.kv.fullBytes);
    expect(second.kv.tokens).toBe(expected.kv.tokens);
    session.dispose();
    fresh.dispose();
  });

  it("says when a pyramid target is out of reach of a shallow model", () => {
    // 6 layers: layers 0 and 1 keep everything (s_0 = 1) and the cosine schedule is gentle, so 0.5 cannot be met.
    const plan = model.planKv(448, { policy: "pyramid", targetRatio: 0.5 });
    expect(plan.targetReached).toBe(false);
    expect(plan.ratio).toBeGreaterThan(0.5);
    expect(plan.config.decayRatio).toBe(0);
    expect(model.planKv(448, { policy: "pyramid", targetRatio: 0.8 }).targetReached).toBe(true);
  });

  it("rejects logits for every position under a compressing policy, and bad options, with clear errors", async () => {
    const session = await model.createSession({ contextSize: 512, threads: 2, kv: { policy: "h2o" } });
    await expect(session.evaluate(tokens.slice(0, 10), { logits: "all" })).rejects.toThrow(/need the full KV policy/);
    session.dispose();
    await expect(model.createSession({ kv: { policy: "snapkv" as never } })).rejects.toThrow(/unknown KV policy "snapkv"/);
    await expect(model.createSession({ kv: { policy: "pyramid", recentRatio: 2 } })).rejects.toThrow(/recentRatio/);
    expect(() => planKv({ layers: 0, kvDim: 8, tokens: 10 })).toThrow(/positive layers/);
  });
});
