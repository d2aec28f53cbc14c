// Generation through the Node binding on the trained demo model: streaming, AbortSignal cancellation within one
// token, prefix reuse, evaluate, infill and chat prompts, dispose during a request, and errors as exceptions.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Model, type Session } from "../../extension/host/engine";
import { demoModelPath } from "../../extension/host/native";
import { SHAPES, testModelPath } from "../support/test-models";

const CODE = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        ";

let model: Model;
let session: Session;

beforeAll(async () => {
  model = await Model.load(demoModelPath());
  session = await model.createSession({ contextSize: 512, threads: 2 });
});

afterAll(() => {
  session?.dispose();
  model?.dispose();
});

describe("generate", () => {
  it("continues the README's prompt with the text llama.cpp produces greedily", async () => {
    const result = await session.generate({ prompt: CODE }, { maxTokens: 16 });
    expect(result.text.startsWith('):\n    """Returns a list of the graph.')).toBe(true);
    expect(result.stopReason).toBe("length");
    expect(result.timings).toMatchObject({ genTokens: 16 });
  });

  it("streams the same text it returns, piece by piece", async () => {
    const pieces: string[] = [];
    const result = await session.generate({ prompt: CODE }, { maxTokens: 24, onToken: (text) => pieces.push(text) });
    expect(pieces.length).toBeGreaterThanOrEqual(24);
    expect(pieces.join("")).toBe(result.text);
  });

  it("reuses the cached prefix of the previous request", async () => {
    await session.generate({ prompt: CODE }, { maxTokens: 2 });
    const extended = await session.generate({ prompt: CODE + "return [l.strip() for l in f]\n" }, { maxTokens: 2 });
    const promptTokens = (await model.tokenize(CODE)).length;
    expect(extended.timings.reusedTokens).toBeGreaterThanOrEqual(promptTokens - 1);
    expect(extended.timings.promptTokens).toBeGreaterThan(promptTokens);
  });

  it("stops within one token of an abort, keeping what was generated", async () => {
    const controller = new AbortController();
    let streamed = 0;
    const result = await session.generate({ prompt: CODE }, {
      maxTokens: 400,
      ignoreEos: true,
      signal: controller.signal,
      onToken: () => {
        // A slow listener (a busy JS thread) must not let the native loop run further ahead.
        const until = performance.now() + 15;
        while (performance.now() < until);
        if (++streamed === 5) controller.abort();
      },
    });
    expect(result.stopReason).toBe("cancelled");
    // The native loop computes at most one token ahead of the listener.
    expect(result.tokens.length).toBeGreaterThanOrEqual(5);
    expect(result.tokens.length).toBeLessThanOrEqual(6);
    await expect(session.generate({ prompt: CODE }, { signal: controller.signal })).rejects.toThrow(/abort/i);
  });

  it("samples reproducibly for a seed", async () => {
    const options = { maxTokens: 12, temperature: 0.8, topK: 40, topP: 0.95, seed: 7 };
    const a = await session.generate({ prompt: CODE }, options);
    const b = await session.generate({ prompt: CODE }, options);
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
  });

  it("stops at a stop string without showing it", async () => {
    const result = await session.generate({ prompt: CODE }, { maxTokens: 40, stop: ["graph"] });
    expect(result.stopReason).toBe("stop");
    expect(result.text).toBe('):\n    """Returns a list of the ');
  });

  it("fills in the middle from an SPM infill prompt and stops at EOT", async () => {
    const result = await session.generate(
      { infill: { prefix: "def add(a, b):\n    return ", suffix: "\n\n\nprint(add(1, 2))\n", format: "spm" } },
      { maxTokens: 32 },
    );
    expect(["eos", "length"]).toContain(result.stopReason);
    expect(result.timings.promptTokens).toBeGreaterThan(10);
  });

  it("builds chat prompts for explanations", async () => {
    const result = await session.generate({ chat: { system: "Be brief.", turns: [{ user: "What does `ls` do?" }] } }, { maxTokens: 8 });
    expect(result.tokens.length).toBeGreaterThan(0);
  });
});

describe("evaluate and statistics", () => {
  it("returns logits for every position, the last row equal to the last-only call", async () => {
    const tokens = Array.from(await model.tokenize(CODE));
    const vocab = model.info.config.vocabSize;
    const all = await session.evaluate(tokens, { logits: "all" });
    const last = await session.evaluate(tokens);
    expect(all.length).toBe(tokens.length * vocab);
    const tail = all.subarray(all.length - vocab);
    let worst = 0;
    for (let i = 0; i < vocab; i++) worst = Math.max(worst, Math.abs(tail[i] - last[i]));
    expect(worst).toBeLessThan(1e-4);
    const stats = session.kvStats();
    expect(stats).toMatchObject({ policy: "full", tokens: tokens.length });
    expect(stats.perLayer).toHaveLength(6);
    expect(stats.bytes).toBe(stats.fullBytes);
  });
});

describe("errors and lifetime", () => {
  it("rejects prompts longer than the context with a clear error", async () => {
    const small = await model.createSession({ contextSize: 32, threads: 1 });
    await expect(small.generate({ prompt: "x = 1\n".repeat(100) })).rejects.toThrow(/more than the context size 32/);
    small.dispose();
    await expect(model.createSession({ contextSize: 1 << 20 })).rejects.toThrow(/exceeds the model's context length/);
  });

  it("refuses a request whose KV cache would not fit in memory, before computing anything", async () => {
    // 2 layers x 256 x (K, V) x f16 = 2 KiB per token: 32M tokens would need 64 GiB.
    const huge = await Model.load(testModelPath({ ...SHAPES.tinyMha, weightType: "Q4_0", contextLength: 1 << 25 }));
    const hugeSession = await huge.createSession({ threads: 1 });
    await expect(hugeSession.generate({ prompt: "x = 1" }, { maxTokens: (1 << 25) - 16 })).rejects.toThrow(
      /KV cache for \d+ tokens needs .*GiB more memory, but only .* is available/,
    );
    // The session stays usable for requests that fit.
    await expect(hugeSession.generate({ prompt: "x = 1" }, { maxTokens: 2 })).resolves.toBeDefined();
    hugeSession.dispose();
    huge.dispose();
  });

  it("refuses a second request while one runs, then accepts the next", async () => {
    const running = session.generate({ prompt: CODE }, { maxTokens: 30 });
    await expect(session.generate({ prompt: CODE }, { maxTokens: 1 })).rejects.toThrow(/busy/);
    await running;
    await expect(session.generate({ prompt: CODE }, { maxTokens: 1 })).resolves.toBeDefined();
  });

  it("survives dispose() of the session and the model in the middle of a generation", async () => {
    const own = await Model.load(demoModelPath());
    const ownSession = await own.createSession({ contextSize: 256, threads: 2 });
    let disposed = false;
    const result = await ownSession.generate({ prompt: CODE }, {
      maxTokens: 200,
      ignoreEos: true,
      onToken: () => {
        if (disposed) return;
        disposed = true;
        ownSession.dispose();
        own.dispose();
      },
    });
    expect(result.stopReason).toBe("cancelled");
    expect(result.tokens.length).toBeLessThan(200);
    expect(() => ownSession.kvStats()).toThrow(/disposed/);
    // Disposed before the request reaches the engine: a clear error, not a crash.
    await expect(ownSession.generate({ prompt: CODE })).rejects.toThrow(/disposed/);
  });

  it("refuses infill with a clear message on a model without infill tokens", async () => {
    const plain = await Model.load(testModelPath({ ...SHAPES.tinyGqa, weightType: "Q4_0", vocab: "llama" }));
    expect(plain.info.hasInfill).toBe(false);
    const plainSession = await plain.createSession({ contextSize: 64, threads: 1 });
    await expect(plainSession.generate({ infill: { prefix: "a = ", suffix: "\n" } })).rejects.toThrow(/no infill tokens.*CodeLLaMA 7B or 13B/);
    // Plain continuation still works.
    await expect(plainSession.generate({ prompt: "a = " }, { maxTokens: 2 })).resolves.toBeDefined();
    plainSession.dispose();
    plain.dispose();
  });
});
