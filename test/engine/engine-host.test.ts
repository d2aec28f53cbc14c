// The engine host process (dist/engine-host.js, bundled by esbuild.mjs) run under plain Node through EngineClient, as
// the extension runs it, on the demo model: streamed infill, cancellation, prefix reuse between requests, the token
// budget, a host killed with SIGKILL and restarted, clear errors for a missing model and one that cannot infill,
// idle unload, malformed requests, and a clean shutdown.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { EngineError, type CompleteParams, type LoadModelParams } from "../../extension/core/protocol";
import { EngineClient, type EngineClientOptions, type EngineState } from "../../extension/host/engine-client";
import { demoModelPath } from "../../extension/host/native";
import { SHAPES, testModelPath } from "../support/test-models";

const ROOT = path.resolve(__dirname, "../..");
// Built by the same script as dist/, into a folder of this test's own (the package test rebuilds dist/ meanwhile).
const BUNDLES = path.join(ROOT, "test", ".cache", "engine-host-bundles");
const HOST = path.join(BUNDLES, "engine-host.js");

const DEMO: LoadModelParams = { path: demoModelPath(), contextSize: 512, threads: 1, kv: { policy: "full" } };
const PYRAMID: LoadModelParams = { ...DEMO, kv: { policy: "pyramid", recentRatio: 0.1, decayRatio: 0.5, minContext: 8 } };

const PREFIX = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return ";
const SUFFIX = "\n\n\ndef main():\n    print(read_lines('a.txt'))\n";
const INFILL: CompleteParams = { prefix: PREFIX, suffix: SUFFIX, format: "spm", maxTokens: 24 };

const clients: EngineClient[] = [];

function client(options: EngineClientOptions = {}): EngineClient {
  const made = new EngineClient(HOST, { restartDelayMs: 100, ...options });
  clients.push(made);
  return made;
}

function waitForState(engine: EngineClient, accept: (state: EngineState) => boolean, timeoutMs = 10_000): Promise<EngineState> {
  if (accept(engine.state)) return Promise.resolve(engine.state);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(new Error(`state not reached within ${timeoutMs} ms; last ${JSON.stringify(engine.state)}`));
    }, timeoutMs);
    const subscription = engine.onStateChange((state) => {
      if (!accept(state)) return;
      clearTimeout(timer);
      subscription.dispose();
      resolve(state);
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function engineError(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EngineError);
  return error as EngineError;
}

beforeAll(() => {
  execFileSync(process.execPath, ["esbuild.mjs", `--outdir=${BUNDLES}`], { cwd: ROOT, stdio: "pipe" });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
});

describe("engine host", () => {
  let engine: EngineClient;

  beforeAll(() => {
    engine = new EngineClient(HOST);
  });

  afterAll(async () => {
    await engine.dispose();
  });

  it("loads the model lazily and streams an SPM infill", async () => {
    expect(engine.state).toMatchObject({ host: "stopped", model: "none" });
    const pieces: string[] = [];
    const states: string[] = [];
    const subscription = engine.onStateChange((state) => states.push(`${state.model}${state.generating ? "+generating" : ""}`));
    const result = await engine.complete(DEMO, INFILL, { onToken: (text) => pieces.push(text) });
    subscription.dispose();
    expect(result.timings.genTokens).toBeGreaterThan(0);
    expect(result.text.length).toBeGreaterThan(0);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(result.text);
    expect(["eos", "length", "stop"]).toContain(result.stopReason);
    expect(result.trimmedPrefixChars).toBe(0);
    expect(result.kv).toMatchObject({ policy: "full" });
    expect(result.kv!.bytes).toBeGreaterThan(0);
    expect(states).toContain("loading");
    expect(states).toContain("loaded+generating");
    expect(engine.state).toMatchObject({ host: "running", model: "loaded", generating: false, kv: result.kv });
    expect(engine.state.summary).toMatchObject({ path: DEMO.path, hasInfill: true, contextSize: 512, layers: 6, kvPolicy: "full" });
  });

  it("gives the same text for the same request, streamed or not, and for PSM a prompt of its own", async () => {
    const streamed = await engine.complete(DEMO, INFILL, { onToken: () => {} });
    const plain = await engine.complete(DEMO, INFILL);
    expect(plain.text).toBe(streamed.text);
    const psm = await engine.complete(DEMO, { ...INFILL, format: "psm" });
    expect(psm.timings.promptTokens).toBe(plain.timings.promptTokens);
  });

  it("reuses the cached prefix when the prefix grows, as typing does", async () => {
    const first = await engine.complete(DEMO, INFILL);
    const typed = await engine.complete(DEMO, { ...INFILL, prefix: PREFIX + "[line.strip() for" });
    expect(typed.timings.promptTokens).toBeGreaterThan(first.timings.promptTokens);
    // SPM puts the suffix first and the prefix last: everything up to the typed text is already in the cache.
    expect(typed.timings.reusedTokens).toBeGreaterThan(first.timings.promptTokens - 4);
  });

  it("reuses the prefix under the pyramid policy too, and reloads the session when the KV settings change", async () => {
    const first = await engine.complete(PYRAMID, INFILL);
    expect(first.kv).toMatchObject({ policy: "pyramid" });
    const typed = await engine.complete(PYRAMID, { ...INFILL, prefix: PREFIX + "[line" });
    expect(typed.timings.reusedTokens).toBeGreaterThan(0);
    const full = await engine.complete(DEMO, INFILL);
    expect(full.kv).toMatchObject({ policy: "full" });
    expect(full.timings.reusedTokens).toBe(0);
  });

  it("stops a generation within a token of a cancel and reports it as cancelled", async () => {
    const controller = new AbortController();
    let cancelledAt = 0;
    let pieces = 0;
    const long = { path: DEMO.path, contextSize: 2048, threads: 1, kv: { policy: "full" as const } };
    const started = performance.now();
    const result = await engine.complete(long, { ...INFILL, maxTokens: 2000 }, {
      signal: controller.signal,
      onToken: () => {
        if (++pieces === 3) {
          cancelledAt = performance.now();
          controller.abort();
        }
      },
    });
    const finished = performance.now();
    expect(result.stopReason).toBe("cancelled");
    expect(result.timings.genTokens).toBeLessThan(200);
    expect(finished - cancelledAt).toBeLessThan(1000);
    expect(finished - started).toBeLessThan(5000);
    // The session is free again at once.
    expect((await engine.complete(long, INFILL)).stopReason).not.toBe("cancelled");
  });

  it("answers a request cancelled before it was sent without running it", async () => {
    await engine.ensureModel(DEMO);
    const controller = new AbortController();
    controller.abort();
    expect((await engineError(engine.complete(DEMO, INFILL, { signal: controller.signal }))).code).toBe("cancelled");
  });

  it("trims the start of a prefix that does not fit the context, by whole lines", async () => {
    const lines = Array.from({ length: 200 }, (_, i) => `value_${i} = compute(${i}, ${i * 7})\n`).join("");
    const prefix = lines + "def f(x):\n    return ";
    const result = await engine.complete(DEMO, { prefix, suffix: SUFFIX, format: "spm", maxTokens: 16 });
    expect(result.timings.promptTokens + 16).toBeLessThanOrEqual(512);
    expect(result.trimmedPrefixChars).toBeGreaterThan(0);
    const kept = prefix.slice(result.trimmedPrefixChars);
    expect(kept).toMatch(/^value_\d+ = compute/);
    expect(kept.endsWith("def f(x):\n    return ")).toBe(true);
  });

  it("reports the cache and plans a policy for the loaded model", async () => {
    await engine.complete(DEMO, INFILL);
    const stats = await engine.kvStats();
    expect(stats).toMatchObject({ policy: "full" });
    expect(stats!.perLayer).toHaveLength(6);
    const plan = await engine.planKv({ tokens: 400, kv: { policy: "pyramid", decayRatio: 0.5, minContext: 8 } });
    expect(plan.perLayer).toHaveLength(6);
    expect(plan.ratio).toBeLessThan(1);
    const shapeOnly = await engine.planKv({ tokens: 2048, layers: 32, kvDim: 4096, kv: { policy: "pyramid" } });
    expect(shapeOnly.perLayer.map((layer) => layer.tokens).slice(-1)).toEqual([768]);
  });

  it("answers a malformed request with a bad-request error and keeps serving", async () => {
    const error = await engineError(engine.request("complete", { prefix: 1, suffix: "", format: "xyz", maxTokens: 4 } as never));
    expect(error.code).toBe("bad-request");
    expect(error.message).toMatch(/complete\.prefix must be a string/);
    expect((await engine.complete(DEMO, INFILL)).text.length).toBeGreaterThan(0);
  });

  it("caps the context size at the model's context length", async () => {
    const summary = await engine.ensureModel({ ...DEMO, contextSize: 100_000 });
    expect(summary).toMatchObject({ contextLength: 2048, contextSize: 2048 });
    expect((await engine.ensureModel({ ...DEMO, contextSize: 0 })).contextSize).toBe(2048);
  });

  it("gives a clear error for a KV setting out of range", async () => {
    const error = await engineError(engine.ensureModel({ ...DEMO, kv: { policy: "pyramid", recentRatio: 2 } }));
    expect(error.message).toMatch(/recentRatio/);
    expect(engine.state.model).toBe("error");
    expect((await engine.complete(DEMO, INFILL)).text.length).toBeGreaterThan(0);
  });
});

describe("engine host failures", () => {
  it("restarts a host killed with SIGKILL, failing the request it was running, and serves the next one", async () => {
    const engine = client();
    await engine.complete(DEMO, INFILL);
    const pid = engine.pid!;
    const long = { path: DEMO.path, contextSize: 2048, threads: 1, kv: { policy: "full" as const } };
    let killed = false;
    const running = engine.complete(long, { ...INFILL, maxTokens: 2000 }, {
      onToken: () => {
        if (!killed) process.kill(pid, "SIGKILL");
        killed = true;
      },
    });
    const error = await engineError(running);
    expect(error.code).toBe("host-exited");
    expect(error.message).toMatch(/SIGKILL/);
    expect(engine.state).toMatchObject({ host: "restarting", model: "none", restarts: 1 });
    const restarted = await waitForState(engine, (state) => state.host === "running");
    expect(restarted.pid).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    const result = await engine.complete(DEMO, INFILL);
    expect(result.text.length).toBeGreaterThan(0);
    expect(engine.state).toMatchObject({ host: "running", model: "loaded", restarts: 1 });
  });

  it("backs off exponentially while the host keeps dying", async () => {
    const engine = client({ restartDelayMs: 200 });
    await engine.complete(DEMO, INFILL);
    const restartTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      process.kill(engine.pid!, "SIGKILL");
      const killedAt = performance.now();
      await waitForState(engine, (state) => state.host === "restarting");
      await waitForState(engine, (state) => state.host === "running");
      restartTimes.push(performance.now() - killedAt);
    }
    expect(restartTimes[0]).toBeGreaterThanOrEqual(190);
    expect(restartTimes[1]).toBeGreaterThanOrEqual(390);
    expect(restartTimes[2]).toBeGreaterThanOrEqual(790);
    expect(engine.state.restarts).toBe(3);
  });

  it("says clearly that a model file is missing", async () => {
    const engine = client();
    const missing = path.join(ROOT, "no-such-model.gguf");
    const error = await engineError(engine.complete({ ...DEMO, path: missing }, INFILL));
    expect(error.code).toBe("model-not-found");
    expect(error.message).toBe(`model file not found: ${missing}`);
    expect(engine.state).toMatchObject({ model: "error", error: error.message });
  });

  it("says clearly that a model without infill tokens cannot complete code", async () => {
    const engine = client();
    const llama = testModelPath({ ...SHAPES.tinyMha, weightType: "Q8_0", vocab: "llama" });
    const summary = await engine.ensureModel({ path: llama, contextSize: 256, threads: 1 });
    expect(summary.hasInfill).toBe(false);
    const error = await engineError(engine.complete({ path: llama, contextSize: 256, threads: 1 }, INFILL));
    expect(error.code).toBe("no-infill");
    expect(error.message).toMatch(/has no infill tokens .*CodeLLaMA 7B or 13B/);
  });

  it("unloads the model after the idle time and loads it again on the next request", async () => {
    const engine = client({ idleUnloadMs: () => 300 });
    await engine.complete(DEMO, INFILL);
    expect(engine.state.model).toBe("loaded");
    const unloadedAt = performance.now();
    await waitForState(engine, (state) => state.model === "none", 5000);
    expect(performance.now() - unloadedAt).toBeGreaterThanOrEqual(250);
    expect(await engine.kvStats()).toBeNull();
    const again = await engine.complete(DEMO, INFILL);
    expect(again.text.length).toBeGreaterThan(0);
    expect(engine.state.model).toBe("loaded");
  });

  it("shuts the host down on dispose and refuses requests afterwards", async () => {
    const engine = client();
    await engine.complete(DEMO, INFILL);
    const pid = engine.pid!;
    await engine.dispose();
    expect(alive(pid)).toBe(false);
    expect(engine.state.host).toBe("stopped");
    expect((await engineError(engine.complete(DEMO, INFILL))).code).toBe("disposed");
  });

  it("ends the host when its parent's channel closes (the editor died)", async () => {
    const { fork } = await import("node:child_process");
    const child = fork(HOST, [], { execPath: process.execPath, execArgv: [], serialization: "json", stdio: ["ignore", "ignore", "ignore", "ipc"] });
    await new Promise<void>((resolve) => child.once("message", () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.disconnect();
    expect(await exited).toBe(0);
  });
});
