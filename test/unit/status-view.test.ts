// The status panel's view model: the figures it shows, formatted from the engine client's state (model, KV stats,
// last completion, a generation in progress) and from the engine's plan for the preview, and the retention controls'
// values and which of them the policy uses.
import { describe, expect, it } from "vitest";

import type { ModelSummary } from "../../extension/core/protocol";
import { statusView, type StatusInput } from "../../extension/core/status-view";
import type { EngineState } from "../../extension/host/engine-client";
import type { KvPlan, KvStats } from "../../extension/host/native";

const MIB = 2 ** 20;

const SUMMARY: ModelSummary = {
  path: "/models/codellama-7b.Q4_K_M.gguf",
  name: "codellama_codellama-7b-hf",
  fileSize: 4_081_004_224,
  weightsBytes: 4_080_000_000,
  fileType: "Q4_K_M",
  chatTuned: false,
  hasInfill: true,
  contextLength: 16384,
  contextSize: 4096,
  layers: 4,
  kvDim: 4096,
  kvPolicy: "pyramid",
  loadMs: 900,
};

const KV: KvStats = {
  policy: "pyramid",
  bytes: 3 * MIB,
  fullBytes: 8 * MIB,
  tokens: 1024,
  decayRatio: 0.5,
  recentRatio: 0.2,
  perLayer: [
    { tokens: 1024, bytes: 2 * MIB },
    { tokens: 512, bytes: 1 * MIB },
    { tokens: 0, bytes: 0 },
    { tokens: 256, bytes: 0.5 * MIB },
  ],
};

const PLAN: KvPlan = {
  policy: "pyramid",
  tokens: 3968,
  config: {} as KvPlan["config"],
  perLayer: [
    { tokens: 3968, bytes: 4 * MIB },
    { tokens: 1984, bytes: 2 * MIB },
  ],
  bytes: 6 * MIB,
  fullBytes: 8 * MIB,
  ratio: 0.75,
  targetReached: true,
};

const IDLE: EngineState = { host: "running", model: "loaded", generating: false, restarts: 0, summary: SUMMARY, kv: KV };

function input(change: Partial<StatusInput> = {}): StatusInput {
  return {
    engine: IDLE,
    enabled: true,
    modelPath: SUMMARY.path,
    kv: { policy: "pyramid", targetRatio: 0, recentRatio: 0.2, decayRatio: 0.9, sinkTokens: 4, minContext: 64, layerInterval: 1 },
    preview: { fileName: "main.py", fileTokens: 12_000, plan: PLAN },
    now: 1_000_000,
    ...change,
  };
}

describe("statusView", () => {
  it("describes the model: format, file and weight sizes, shape, base or Instruct", () => {
    const view = statusView(input());
    expect(view.state).toEqual({ label: "Idle", tone: "idle" });
    expect(view.model).toEqual({
      name: "codellama_codellama-7b-hf",
      path: SUMMARY.path,
      detail: "Q4_K_M · 3.8 GiB file · 3.8 GiB weights",
      shape: "4 layers · context 4,096 tokens · base model",
    });
    expect(view.explainModel).toBeUndefined();
  });

  it("shows the cache in use against the full cache, and a bar per layer scaled to the widest", () => {
    const cache = statusView(input()).cache!;
    expect(cache).toMatchObject({ policy: "pyramid", bytes: "3.0 MiB of 8.0 MiB", share: "38% of the full cache (63% saved)", tokens: "1,024 tokens" });
    expect(cache.layers.map((bar) => [bar.layer, bar.tokens, bar.fraction])).toEqual([
      [0, 1024, 1],
      [1, 512, 0.5],
      [2, 0, 0],
      [3, 256, 0.25],
    ]);
    expect(cache.layers[1].label).toBe("layer 1: 512 tokens, 1.0 MiB");
    expect(cache.summary).toBe("4 layers keep from 1,024 tokens down to 0 (layer 2)");
  });

  it("gives the last completion's time to first token and speed", () => {
    const engine: EngineState = {
      ...IDLE,
      lastCompletion: { promptTokens: 1800, reusedTokens: 1750, promptMs: 240, genTokens: 24, genMs: 1200, firstTokenMs: 310, totalMs: 1500, at: 1 },
    };
    expect(statusView(input({ engine })).lastCompletion).toEqual({
      firstToken: "310 ms",
      speed: "20.0 tok/s",
      tokens: "24 tokens",
      prompt: "1,800 tokens (1,750 reused) in 240 ms",
    });
  });

  it("shows a generation live: waiting for its first token, then tokens and speed", () => {
    const reading: EngineState = { ...IDLE, generating: true, live: { kind: "complete", tokens: 0, startedAt: 999_000 } };
    let view = statusView(input({ engine: reading }));
    expect(view.state).toEqual({ label: "Generating", tone: "busy" });
    expect(view.live).toBe("Completing: reading the prompt (1.00 s)");
    const streaming: EngineState = { ...IDLE, generating: true, live: { kind: "explain", tokens: 30, startedAt: 997_000, firstTokenAt: 998_000 } };
    view = statusView(input({ engine: streaming }));
    expect(view.state.label).toBe("Explaining");
    // 29 tokens after the first in the second since it came.
    expect(view.live).toBe("Explaining: 30 tokens, 14.5 tok/s, first after 1.00 s");
    const one: EngineState = { ...IDLE, generating: true, live: { kind: "complete", tokens: 1, startedAt: 999_000, firstTokenAt: 999_990 } };
    expect(statusView(input({ engine: one })).live).toBe("Completing: 1 token, –, first after 990 ms");
    expect(statusView(input()).live).toBeUndefined();
  });

  it("says what state the engine is in", () => {
    const label = (engine: Partial<EngineState>, change: Partial<StatusInput> = {}) =>
      statusView(input({ engine: { ...IDLE, ...engine }, ...change })).state;
    expect(label({}, { enabled: false })).toEqual({ label: "Completions off", tone: "off" });
    expect(label({ host: "restarting", error: "killed by SIGKILL" })).toEqual({ label: "Restarting the engine", tone: "error", detail: "killed by SIGKILL" });
    expect(label({ model: "error", error: "model file not found: /x" })).toMatchObject({ tone: "error", detail: "model file not found: /x" });
    expect(label({ model: "none", summary: undefined }, { modelPath: "" })).toEqual({ label: "No model configured", tone: "off" });
    expect(label({ model: "loading" })).toEqual({ label: "Loading the model", tone: "busy" });
    expect(label({ model: "none" })).toMatchObject({ tone: "idle", label: expect.stringMatching(/next completion loads it/) });
  });

  it("previews the plan for the active file, saying when a prompt holds only part of it", () => {
    const preview = statusView(input()).preview;
    expect(preview).toMatchObject({
      title: "main.py: 12,000 tokens; a prompt holds 3,968 of them",
      bytes: "6.0 MiB of 8.0 MiB",
      share: "75% of the full cache (25% saved)",
    });
    const whole = statusView(input({ preview: { fileName: "a.py", fileTokens: 3968, plan: { ...PLAN, targetReached: false } } })).preview;
    expect(whole).toMatchObject({ title: "a.py: 3,968 tokens", share: expect.stringMatching(/target ratio is out of reach/) });
    expect(statusView(input({ preview: { unavailable: "Open a file" } })).preview).toEqual({ unavailable: "Open a file" });
  });

  it("gives each retention control its value and marks those the policy does not use", () => {
    const controls = (kv: StatusInput["kv"]) =>
      Object.fromEntries(statusView(input({ kv })).retention.map((control) => [control.key, [control.value, control.inactive]]));
    expect(controls({ policy: "pyramid", targetRatio: 0, recentRatio: 0.2, decayRatio: 0.9, sinkTokens: 4, minContext: 64, layerInterval: 1 })).toEqual({
      policy: ["pyramid", false],
      targetRatio: [0, false],
      recentRatio: [0.2, false],
      decayRatio: [0.9, false],
      sinkTokens: [4, false],
      minContext: [64, false],
      layerInterval: [1, false],
    });
    // A target ratio overrides the decay; streaming has no decay nor interval; h2o keeps no sinks; full uses nothing.
    expect(controls({ policy: "pyramid", targetRatio: 0.45, decayRatio: 0.9 }).decayRatio).toEqual([0.9, true]);
    const streaming = controls({ policy: "streaming", decayRatio: 0.9, layerInterval: 2, sinkTokens: 4 });
    expect([streaming.decayRatio[1], streaming.layerInterval[1], streaming.sinkTokens[1]]).toEqual([true, true, false]);
    expect(controls({ policy: "h2o", sinkTokens: 4 }).sinkTokens).toEqual([4, true]);
    const full = controls({ policy: "full" });
    expect(Object.entries(full).filter(([key, [, inactive]]) => key !== "policy" && !inactive)).toEqual([]);
  });

  it("names an explanation model loaded apart from the completion model", () => {
    const instruct = { ...SUMMARY, path: "/m/codellama-7b-instruct.Q4_K_M.gguf", name: "CodeLlama 7B Instruct", chatTuned: true };
    const view = statusView(input({ engine: { ...IDLE, explainModel: instruct } }));
    expect(view.explainModel?.shape).toMatch(/Instruct model$/);
  });
});
