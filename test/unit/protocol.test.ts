// The engine host protocol: messages survive a JSON round trip (as over the IPC channel), malformed ones are refused
// with a message naming the field, errors keep their codes, and load options compare by value.
import { describe, expect, it } from "vitest";

import {
  ENGINE_METHODS,
  EngineError,
  parseHostMessage,
  parseRequest,
  ProtocolError,
  sameLoad,
  type HostMessage,
  type RequestMessage,
} from "../../extension/core/protocol";

const roundTrip = <T>(message: T): unknown => JSON.parse(JSON.stringify(message));

const REQUESTS: RequestMessage[] = [
  {
    type: "request",
    id: 1,
    method: "loadModel",
    params: { path: "/m/codellama-7b.Q4_K_M.gguf", contextSize: 4096, threads: 4, gpuLayers: 0, kv: { policy: "pyramid", targetRatio: 0.5, decodeCompression: false } },
  },
  {
    type: "request",
    id: 2,
    method: "complete",
    params: { prefix: "def f(x):\n    ", suffix: "\n", format: "spm", maxTokens: 64, temperature: 0.2, stop: ["\n\n"], stream: true },
  },
  { type: "request", id: 3, method: "cancel", params: { target: 2 } },
  { type: "request", id: 4, method: "kvStats", params: {} },
  { type: "request", id: 5, method: "planKv", params: { tokens: 2048, layers: 32, kvDim: 4096, kv: { policy: "streaming" } } },
  { type: "request", id: 6, method: "unload", params: {} },
  { type: "request", id: 7, method: "shutdown", params: {} },
  {
    type: "request",
    id: 8,
    method: "explain",
    params: { load: { path: "/m/codellama-7b-instruct.Q4_K_M.gguf", contextSize: 4096 }, code: "x = 1", language: "python", context: "y = 2", maxTokens: 512, stream: true },
  },
  { type: "request", id: 9, method: "countTokens", params: { text: "def f():\n    pass\n" } },
];

describe("requests", () => {
  it("cover every method and survive a JSON round trip unchanged", () => {
    expect(new Set(REQUESTS.map((r) => r.method))).toEqual(new Set(ENGINE_METHODS));
    for (const request of REQUESTS) expect(parseRequest(roundTrip(request))).toEqual(request);
  });

  it("default absent params to an empty object", () => {
    expect(parseRequest({ type: "request", id: 9, method: "kvStats" })).toEqual({ type: "request", id: 9, method: "kvStats", params: {} });
  });

  const complete = REQUESTS[1] as Extract<RequestMessage, { method: "complete" }>;
  const cases: [string, unknown, RegExp][] = [
    ["not an object", "hello", /a request must be an object/],
    ["an array", [1, 2], /a request must be an object/],
    ["another type", { ...complete, type: "response" }, /request\.type must be "request"/],
    ["a fractional id", { ...complete, id: 1.5 }, /request\.id must be a non-negative integer/],
    ["a negative id", { ...complete, id: -1 }, /request\.id/],
    ["an unknown method", { ...complete, method: "explode" }, /request\.method must be loadModel \| complete/],
    ["params that are not an object", { ...complete, params: [] }, /complete params must be an object/],
    ["a prefix that is not a string", { ...complete, params: { ...complete.params, prefix: 3 } }, /complete\.prefix must be a string, got 3/],
    ["a missing suffix", { ...complete, params: { ...complete.params, suffix: undefined } }, /complete\.suffix must be a string, got nothing/],
    ["an unknown FIM format", { ...complete, params: { ...complete.params, format: "pms" } }, /complete\.format must be "spm" or "psm", got "pms"/],
    ["a freshSession that is not a boolean", { ...complete, params: { ...complete.params, freshSession: "yes" } }, /complete\.freshSession must be a boolean, got "yes"/],
    ["no maxTokens", { ...complete, params: { ...complete.params, maxTokens: undefined } }, /complete\.maxTokens must be a number/],
    ["zero maxTokens", { ...complete, params: { ...complete.params, maxTokens: 0 } }, /complete\.maxTokens must be >= 1/],
    ["fractional maxTokens", { ...complete, params: { ...complete.params, maxTokens: 2.5 } }, /complete\.maxTokens must be a whole number/],
    ["a NaN temperature (null after JSON)", roundTrip({ ...complete, params: { ...complete.params, temperature: NaN } }), /complete\.temperature must be a number, got null/],
    ["stop strings that are not strings", { ...complete, params: { ...complete.params, stop: ["a", 1] } }, /complete\.stop must be an array of strings/],
    ["a non-boolean stream flag", { ...complete, params: { ...complete.params, stream: "yes" } }, /complete\.stream must be a boolean/],
    ["an empty model path", { type: "request", id: 1, method: "loadModel", params: { path: "" } }, /loadModel\.path is empty/],
    ["a negative context size", { type: "request", id: 1, method: "loadModel", params: { path: "m", contextSize: -5 } }, /loadModel\.contextSize must be >= 0/],
    ["an unknown KV policy", { type: "request", id: 1, method: "loadModel", params: { path: "m", kv: { policy: "lru" } } }, /loadModel\.kv\.policy must be full \| pyramid \| streaming \| h2o/],
    ["an unknown KV option", { type: "request", id: 1, method: "loadModel", params: { path: "m", kv: { ratio: 0.5 } } }, /loadModel\.kv has an unknown option "ratio"/],
    ["a KV number given as text", { type: "request", id: 1, method: "loadModel", params: { path: "m", kv: { targetRatio: "0.5" } } }, /loadModel\.kv\.targetRatio must be a number/],
    ["a cancel without a target", { type: "request", id: 1, method: "cancel", params: {} }, /cancel\.target must be a non-negative integer/],
    ["a plan without tokens", { type: "request", id: 1, method: "planKv", params: {} }, /planKv\.tokens must be a number/],
    ["an explanation without a model", { type: "request", id: 1, method: "explain", params: { code: "x", maxTokens: 8 } }, /explain\.load must be an object/],
    ["an explanation with an empty model path", { type: "request", id: 1, method: "explain", params: { load: { path: "" }, code: "x", maxTokens: 8 } }, /explain\.load\.path is empty/],
    ["an explanation without code", { type: "request", id: 1, method: "explain", params: { load: { path: "m" }, maxTokens: 8 } }, /explain\.code must be a string/],
    ["an explanation with a context that is no string", { type: "request", id: 1, method: "explain", params: { load: { path: "m" }, code: "x", context: 3, maxTokens: 8 } }, /explain\.context must be a string/],
    ["an explanation with a bad KV option", { type: "request", id: 1, method: "explain", params: { load: { path: "m", kv: { policy: "lru" } }, code: "x", maxTokens: 8 } }, /explain\.load\.kv\.policy must be/],
    ["a token count without text", { type: "request", id: 1, method: "countTokens", params: {} }, /countTokens\.text must be a string/],
  ];
  it.each(cases)("refuses %s, naming the field", (_name, message, expected) => {
    expect(() => parseRequest(message)).toThrow(ProtocolError);
    expect(() => parseRequest(message)).toThrow(expected);
  });

  it("leaves the ranges of KV options to the engine, which names them in its own message", () => {
    const request = { type: "request", id: 1, method: "loadModel", params: { path: "m", kv: { recentRatio: 7 } } };
    expect(parseRequest(request)).toEqual(request);
  });
});

describe("host messages", () => {
  const MESSAGES: HostMessage[] = [
    { type: "ready", pid: 4242, protocol: 1 },
    { type: "event", id: 2, event: "token", text: "return x" },
    { type: "event", id: 2, event: "token", text: " + 1", count: 3 },
    {
      type: "response",
      id: 2,
      ok: true,
      result: { text: "x", stopReason: "eos", timings: { promptTokens: 20, reusedTokens: 18, promptMs: 3, genTokens: 2, genMs: 1, firstTokenMs: 4, totalMs: 5 }, kv: null, trimmedPrefixChars: 0 },
    },
    { type: "response", id: 4, ok: true, result: null },
    { type: "response", id: 3, ok: false, error: { code: "no-infill", message: "no infill tokens" } },
  ];

  it("survive a JSON round trip unchanged", () => {
    for (const message of MESSAGES) expect(parseHostMessage(roundTrip(message))).toEqual(message);
  });

  it("refuse unknown types and malformed fields", () => {
    expect(() => parseHostMessage({ type: "hello" })).toThrow(/host message type must be/);
    expect(() => parseHostMessage({ type: "event", id: 1, event: "progress", text: "" })).toThrow(/event\.event must be "token"/);
    expect(() => parseHostMessage({ type: "event", id: 1, event: "token" })).toThrow(/event\.text must be a string/);
    expect(() => parseHostMessage({ type: "event", id: 1, event: "token", text: "", count: -1 })).toThrow(/event\.count/);
    expect(() => parseHostMessage({ type: "response", id: 1, ok: "yes" })).toThrow(/response\.ok must be a boolean/);
    expect(() => parseHostMessage({ type: "response", id: 1, ok: false })).toThrow(/response\.error must be an object/);
    expect(() => parseHostMessage({ type: "ready", pid: "1", protocol: 1 })).toThrow(/ready\.pid/);
  });

  it("read an error code they do not know as an engine error, keeping the message", () => {
    const message = parseHostMessage({ type: "response", id: 1, ok: false, error: { code: "meltdown", message: "boom" } });
    expect(message).toEqual({ type: "response", id: 1, ok: false, error: { code: "engine", message: "boom" } });
  });
});

describe("errors", () => {
  it("keep code and message through a payload", () => {
    const error = new EngineError("model-not-found", "model file not found: /x.gguf");
    const back = EngineError.fromPayload(roundTrip(error.toPayload()) as ReturnType<EngineError["toPayload"]>);
    expect(back).toBeInstanceOf(Error);
    expect(back).toMatchObject({ code: "model-not-found", message: "model file not found: /x.gguf", name: "EngineError" });
  });
});

describe("sameLoad", () => {
  const base = { path: "/m.gguf", contextSize: 4096, threads: 0, kv: { policy: "pyramid" as const, recentRatio: 0.2, decayRatio: 0.9 } };

  it("compares by value, whatever the order of the KV options", () => {
    expect(sameLoad(base, { ...base, kv: { decayRatio: 0.9, recentRatio: 0.2, policy: "pyramid" } })).toBe(true);
  });

  it("treats 0 and absent as the same default for context and threads", () => {
    expect(sameLoad({ path: "/m.gguf" }, { path: "/m.gguf", contextSize: 0, threads: 0, kv: {} })).toBe(true);
  });

  it("tells any change of model, context, threads or KV option apart", () => {
    expect(sameLoad(base, { ...base, path: "/n.gguf" })).toBe(false);
    expect(sameLoad(base, { ...base, contextSize: 2048 })).toBe(false);
    expect(sameLoad(base, { ...base, threads: 2 })).toBe(false);
    expect(sameLoad(base, { ...base, kv: { ...base.kv, decayRatio: 0.8 } })).toBe(false);
    expect(sameLoad(base, { ...base, kv: { ...base.kv, policy: "full" } })).toBe(false);
  });
});
