// Explanations through the engine host, on the real engine: the Instruct chat prompt in a session of its own (the
// completion session keeps its cached prefix), streamed text, the surrounding lines dropped when they do not fit and
// a clear error when the code alone does not, cancellation, token counts, and what a model summary says of the file.
// A separate explanation model is loaded alongside the completion model when memory allows and in its place when it
// does not (the host in-process here, told how much memory there is).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { explainRequest } from "../../extension/core/explain-prompt";
import { EngineError, type CompleteParams, type ExplainParams, type HostMessage, type LoadModelParams } from "../../extension/core/protocol";
import { EngineClient } from "../../extension/host/engine-client";
import { Model } from "../../extension/host/engine";
import { EngineHost } from "../../extension/host/engine-host";
import { demoModelPath, loadAddon } from "../../extension/host/native";
import { SHAPES, testModelPath } from "../support/test-models";

const ROOT = path.resolve(__dirname, "../..");
const BUNDLES = path.join(ROOT, "test", ".cache", "explain-bundles");
const HOST = path.join(BUNDLES, "engine-host.js");

const DEMO: LoadModelParams = { path: demoModelPath(), contextSize: 512, threads: 1, kv: { policy: "full" } };
const CODE = "def read_lines(path):\n    with open(path) as f:\n        return [line.strip() for line in f]";
const CONTEXT = "import os\n\n\n[… the code to explain …]\n\n\ndef main():\n    print(read_lines('a.txt'))";
const EXPLAIN: ExplainParams = { load: DEMO, code: CODE, language: "python", context: CONTEXT, maxTokens: 16 };
const INFILL: CompleteParams = {
  prefix: "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return ",
  suffix: "\n\n\ndef main():\n    pass\n",
  format: "spm",
  maxTokens: 8,
};

/** A random-weight model whose general.name says Instruct, as converted CodeLlama Instruct files do. */
function instructModel(): string {
  return testModelPath({ ...SHAPES.tinyGqa, weightType: "Q8_0", contextLength: 512, name: "CodeLlama-7b-Instruct-hf" });
}

beforeAll(() => {
  execFileSync(process.execPath, ["esbuild.mjs", `--outdir=${BUNDLES}`], { cwd: ROOT, stdio: "pipe" });
});

describe("explanations through the engine host process", () => {
  let engine: EngineClient;

  beforeAll(() => {
    engine = new EngineClient(HOST);
  });

  afterAll(async () => {
    await engine.dispose();
  });

  it("streams an answer to the Instruct chat prompt, in a session that leaves the completion cache alone", async () => {
    const first = await engine.complete(DEMO, INFILL);
    const pieces: string[] = [];
    const result = await engine.explain(EXPLAIN, { onToken: (text) => pieces.push(text) });
    expect(result.timings.genTokens).toBeGreaterThan(0);
    expect(pieces.join("")).toBe(result.text);
    expect(result.timings.firstTokenMs).toBeGreaterThan(0);
    expect(result.timings.firstTokenMs).toBeLessThanOrEqual(result.timings.totalMs);
    expect(result).toMatchObject({ contextDropped: false, swappedOut: false, model: { path: DEMO.path, chatTuned: false } });
    // The prompt is the model's chat template around explainRequest's turn, context included.
    const model = await loadAddon().loadModel(DEMO.path);
    const request = explainRequest(CODE, "python", CONTEXT);
    const expected = await model.chatPrompt(request.system, [{ user: request.user }]);
    model.dispose();
    expect(result.timings.promptTokens).toBe(expected.length);
    // The completion session still holds its prompt: the same request reuses all but the last token.
    const again = await engine.complete(DEMO, INFILL);
    expect(again.timings.reusedTokens).toBeGreaterThanOrEqual(first.timings.promptTokens - 1);
    expect(again.text).toBe(first.text);
    expect(engine.state.explainModel).toBeUndefined();
  });

  it("drops the surrounding lines when they do not fit, and says clearly when the code alone does not", async () => {
    const small = { ...DEMO, contextSize: 160 };
    const longContext = Array.from({ length: 40 }, (_, i) => `value_${i} = compute(${i})`).join("\n");
    const dropped = await engine.explain({ ...EXPLAIN, load: small, context: longContext, maxTokens: 8 });
    expect(dropped.contextDropped).toBe(true);
    expect(dropped.timings.promptTokens).toBeLessThanOrEqual(152);
    const error = await engine.explain({ ...EXPLAIN, load: small, code: longContext, context: undefined, maxTokens: 8 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "too-long", message: expect.stringMatching(/prompt of \d+ tokens.*context of 160 tokens holds 152: select less/) });
  });

  it("stops an explanation on cancel", async () => {
    const controller = new AbortController();
    let pieces = 0;
    const result = await engine.explain({ ...EXPLAIN, maxTokens: 400 }, {
      signal: controller.signal,
      onToken: () => {
        if (++pieces === 3) controller.abort();
      },
    });
    expect(result.stopReason).toBe("cancelled");
    expect(result.timings.genTokens).toBeLessThan(10);
  });

  it("counts tokens with the loaded model's tokenizer", async () => {
    await engine.ensureModel(DEMO);
    const model = await Model.load(DEMO.path);
    const text = "for (let i = 0; i < n; i++) total += values[i];\n";
    const tokens = await model.tokenize(text, { addBos: false });
    model.dispose();
    expect(await engine.countTokens(text)).toBe(tokens.length);
  });

  it("summarises a model file: weights, format, and whether it is an Instruct model", async () => {
    const summary = await engine.ensureModel(DEMO);
    expect(summary).toMatchObject({ fileType: "Q8_0", chatTuned: false, layers: 6, kvDim: 64 });
    expect(summary.weightsBytes).toBeGreaterThan(0.9 * summary.fileSize);
    expect(summary.weightsBytes).toBeLessThan(summary.fileSize);
    const instruct = await engine.ensureModel({ path: instructModel(), contextSize: 256, threads: 1 });
    expect(instruct.chatTuned).toBe(true);
  });
});

describe("an explanation model loaded alone", () => {
  it("is named in the client's state and unloaded after the idle time like the completion model", async () => {
    const engine = new EngineClient(HOST, { idleUnloadMs: () => 300 });
    try {
      const result = await engine.explain({ ...EXPLAIN, load: { path: instructModel(), contextSize: 256, threads: 1 } });
      expect(result.model.chatTuned).toBe(true);
      expect(engine.state.explainModel?.path).toBe(instructModel());
      expect(engine.state.model).toBe("none");
      await expect.poll(() => engine.state.explainModel, { timeout: 5000 }).toBeUndefined();
    } finally {
      await engine.dispose();
    }
  });
});

/** The host in this process, driven by messages as the client would drive it. */
class HostHarness {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly host: EngineHost;

  constructor(availableMemory: number) {
    this.host = new EngineHost((message: HostMessage) => this.receive(message), () => {}, { availableMemory: () => availableMemory });
  }

  private receive(message: HostMessage): void {
    if (message.type !== "response") return;
    const waiter = this.waiting.get(message.id);
    this.waiting.delete(message.id);
    if (message.ok) waiter?.resolve(message.result);
    else waiter?.reject(EngineError.fromPayload(message.error));
  }

  request<T>(method: string, params: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.host.receive({ type: "request", id, method, params });
    });
  }
}

describe("a separate explanation model", () => {
  const harnesses: HostHarness[] = [];
  const harness = (availableMemory: number) => {
    const made = new HostHarness(availableMemory);
    harnesses.push(made);
    return made;
  };
  afterEach(() => {
    for (const made of harnesses.splice(0)) made.host.close();
  });

  it("is loaded alongside the completion model when memory allows", async () => {
    const host = harness(Number.MAX_SAFE_INTEGER);
    await host.request("loadModel", DEMO);
    const result = await host.request<{ swappedOut: boolean; model: { chatTuned: boolean } }>("explain", {
      ...EXPLAIN,
      load: { path: instructModel(), contextSize: 256, threads: 1 },
    });
    expect(result).toMatchObject({ swappedOut: false, model: { chatTuned: true } });
    expect(await host.request("kvStats", {})).not.toBeNull();
    const completion = await host.request<{ timings: { reusedTokens: number } }>("complete", INFILL);
    expect(completion.timings.reusedTokens).toBe(0);
    const again = await host.request<{ timings: { reusedTokens: number } }>("complete", INFILL);
    expect(again.timings.reusedTokens).toBeGreaterThan(0);
  });

  it("replaces the completion model when both do not fit, which the next completion loads again", async () => {
    const host = harness(0);
    await host.request("loadModel", DEMO);
    await host.request("complete", INFILL);
    const result = await host.request<{ swappedOut: boolean; text: string }>("explain", {
      ...EXPLAIN,
      load: { path: instructModel(), contextSize: 256, threads: 1 },
    });
    expect(result.swappedOut).toBe(true);
    expect(await host.request("kvStats", {})).toBeNull();
    await expect(host.request("complete", INFILL)).rejects.toMatchObject({ code: "no-model" });
    await host.request("loadModel", DEMO);
    const completion = await host.request<{ text: string }>("complete", INFILL);
    expect(completion.text.length).toBeGreaterThan(0);
  });

  it("becomes the completion model without loading it again when the completion setting names it", async () => {
    const host = harness(0);
    const instruct = { path: instructModel(), contextSize: 256, threads: 1 };
    await host.request("explain", { ...EXPLAIN, load: instruct });
    const summary = await host.request<{ path: string; chatTuned: boolean }>("loadModel", instruct);
    expect(summary).toMatchObject({ path: instruct.path, chatTuned: true });
    expect(await host.request("kvStats", {})).not.toBeNull();
  });
});
