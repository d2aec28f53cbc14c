// The messages between the extension (EngineClient) and the engine host process (engine-host.ts): JSON objects sent
// over the Node IPC channel of child_process.fork (serialization "json"). Requests carry an id; each gets exactly one
// response with that id; a streaming request also gets "token" events with its id before the response. The host
// announces itself with one "ready" message when it starts.
//
// Pure: no vscode import and no engine at run time (the types from ../host/native are erased), so the extension
// bundle can use it without pulling in the native addon.
import type { InfillOrder, KvPlan, KvPolicyName, KvPolicyOptions, KvStats, StopReason } from "../host/native";

export const PROTOCOL_VERSION = 1;

/** Loads a model and makes the host's one session for it (the same model and options keep the session and its cache). */
export interface LoadModelParams {
  path: string;
  /** Tokens the session holds (prompt + generated); 0, absent or more than the model's context length: that length. */
  contextSize?: number;
  /** Threads for computation; 0 or absent: the hardware threads. */
  threads?: number;
  kv?: KvPolicyOptions;
  /** Layers to offload to a GPU; accepted for the settings' sake, the CPU engine ignores it. */
  gpuLayers?: number;
}

export interface ModelSummary {
  path: string;
  name: string;
  fileSize: number;
  /** Bytes of the weight tensors: the memory the model itself holds. */
  weightsBytes: number;
  /** The weight format the file declares, as llama-bench names it (Q4_K_M, Q8_0, ...). */
  fileType: string;
  /** The file says it is an Instruct (chat) model, which understands the chat template that Explain uses. */
  chatTuned: boolean;
  /** The model has CodeLLaMA's infill tokens (▁<PRE>/▁<SUF>/▁<MID>); completion needs them. */
  hasInfill: boolean;
  contextLength: number;
  /** The session's context size (the setting, or the model's context length). */
  contextSize: number;
  layers: number;
  /** Width of one layer's keys (KV heads x head size): with `layers`, what a cached token costs. */
  kvDim: number;
  kvPolicy: KvPolicyName;
  /** Milliseconds the load took; 0 when the model and session were already loaded with these options. */
  loadMs: number;
}

export interface CompleteParams {
  prefix: string;
  suffix: string;
  format: InfillOrder;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  stop?: string[];
  /** Send a "token" event per piece of text as it is generated. */
  stream?: boolean;
  /** Benchmarks: drop the cached prefix first (a new session), so the whole prompt is computed. */
  freshSession?: boolean;
}

export interface CompleteTimings {
  promptTokens: number;
  /** Prompt tokens served from the session's cache of the previous request. */
  reusedTokens: number;
  promptMs: number;
  genTokens: number;
  genMs: number;
  /** From the host receiving the request to the first generated text (what a user waits for); 0 if none came. */
  firstTokenMs: number;
  /** From the host receiving the request to its response, queueing and tokenizing included. */
  totalMs: number;
}

export interface CompleteResult {
  text: string;
  stopReason: StopReason;
  timings: CompleteTimings;
  kv: KvStats | null;
  /** Characters cut from the start of the prefix to fit the context budget (0: the whole prefix was used). */
  trimmedPrefixChars: number;
}

/** A chat request to explain code with the CodeLLaMA-Instruct template (extension/core/explain-prompt.ts). */
export interface ExplainParams {
  /** The model to explain with: the completion model's load, or that of `explain.modelPath`. */
  load: LoadModelParams;
  code: string;
  /** A Markdown language name for the code fence (python, typescript, ...). */
  language?: string;
  /** Lines around the code; left out (and said so in the result) when the prompt would not fit the context. */
  context?: string;
  maxTokens: number;
  temperature?: number;
  stream?: boolean;
}

export interface ExplainResult {
  text: string;
  stopReason: StopReason;
  timings: CompleteTimings;
  kv: KvStats | null;
  /** The model that answered. */
  model: ModelSummary;
  /** The surrounding context did not fit the context size and was left out of the prompt. */
  contextDropped: boolean;
  /** The completion model was unloaded to make room for this one; the next completion loads it again. */
  swappedOut: boolean;
}

export interface PlanKvParams {
  tokens: number;
  kv?: KvPolicyOptions;
  /** Required when no model is loaded; otherwise the loaded model's shape is used. */
  layers?: number;
  kvDim?: number;
}

/** Each method's parameters and result. */
export interface EngineMethods {
  loadModel: { params: LoadModelParams; result: ModelSummary };
  complete: { params: CompleteParams; result: CompleteResult };
  /** Stops the request with this id (a complete: it returns early with stopReason "cancelled"). */
  cancel: { params: { target: number }; result: { cancelled: boolean } };
  /** The cache of the loaded model's session after its last request; null when no model is loaded. */
  kvStats: { params: Record<string, never>; result: KvStats | null };
  planKv: { params: PlanKvParams; result: KvPlan };
  /** Explains code with an Instruct model, in a session of its own (the completion session keeps its cache). */
  explain: { params: ExplainParams; result: ExplainResult };
  /** Tokens the loaded completion model makes of `text` (no BOS): what a prompt of it costs. */
  countTokens: { params: { text: string }; result: { tokens: number } };
  unload: { params: Record<string, never>; result: { unloaded: boolean } };
  /** Answers, then the host disposes everything and exits. */
  shutdown: { params: Record<string, never>; result: Record<string, never> };
}

export type EngineMethod = keyof EngineMethods;
export type ParamsOf<M extends EngineMethod> = EngineMethods[M]["params"];
export type ResultOf<M extends EngineMethod> = EngineMethods[M]["result"];

export const ENGINE_METHODS: readonly EngineMethod[] = [
  "loadModel",
  "complete",
  "cancel",
  "kvStats",
  "planKv",
  "explain",
  "countTokens",
  "unload",
  "shutdown",
];

export type RequestMessage = { [M in EngineMethod]: { type: "request"; id: number; method: M; params: ParamsOf<M> } }[EngineMethod];

/**
 * Why a request failed, for callers that react differently: a missing model file or a model without infill tokens
 * is the user's to fix (say so once), a cancelled request is no error, a dead host is retried after the restart.
 */
export type EngineErrorCode =
  | "bad-request"
  | "model-not-found"
  | "no-infill"
  | "no-model"
  | "too-long"
  | "cancelled"
  | "host-exited"
  | "disposed"
  | "timeout"
  | "engine";

export interface ErrorPayload {
  code: EngineErrorCode;
  message: string;
}

export type ResponseMessage =
  | { type: "response"; id: number; ok: true; result: unknown }
  | { type: "response"; id: number; ok: false; error: ErrorPayload };

export interface TokenEventMessage {
  type: "event";
  id: number;
  event: "token";
  text: string;
  /** Tokens generated so far by this request (a piece of text may hold several, or wait for the next). */
  count?: number;
}

export interface ReadyMessage {
  type: "ready";
  pid: number;
  protocol: number;
}

export type HostMessage = ResponseMessage | TokenEventMessage | ReadyMessage;

/** An error with a code, as responses carry it; thrown by the client and by the host's handlers. */
export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "EngineError";
  }

  toPayload(): ErrorPayload {
    return { code: this.code, message: this.message };
  }

  static fromPayload(payload: ErrorPayload): EngineError {
    return new EngineError(payload.code, payload.message);
  }
}

/** What the user reads when a model cannot complete code for want of CodeLLaMA's infill tokens. */
export function noInfillMessage(modelName: string, path: string): string {
  return (
    `${modelName} (${path}) has no infill tokens (▁<PRE>/▁<SUF>/▁<MID>), so it cannot complete code: ` +
    "use a CodeLLaMA 7B or 13B base or Instruct model (34B and the Python variants cannot infill)"
  );
}

/** A message that does not have the shape the protocol allows. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---------------------------------------------------------------------------------------------
// Validation: both sides check what they receive, so a malformed message is one clear error, never undefined
// behaviour deep inside the engine.

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(what: string, expected: string, value: unknown): never {
  throw new ProtocolError(`${what} must be ${expected}, got ${value === undefined ? "nothing" : JSON.stringify(value)}`);
}

function requireId(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(what, "a non-negative integer", value);
  return value as number;
}

function requireString(object: Json, key: string, what: string): string {
  const value = object[key];
  if (typeof value !== "string") fail(`${what}.${key}`, "a string", value);
  return value;
}

function optionalNumber(object: Json, key: string, what: string, options: { min?: number; whole?: boolean } = {}): void {
  const value = object[key];
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value)) fail(`${what}.${key}`, "a number", value);
  if (options.whole && !Number.isInteger(value)) fail(`${what}.${key}`, "a whole number", value);
  if (options.min !== undefined && value < options.min) fail(`${what}.${key}`, `>= ${options.min}`, value);
}

function requireNumber(object: Json, key: string, what: string, options: { min?: number; whole?: boolean } = {}): void {
  if (object[key] === undefined) fail(`${what}.${key}`, "a number", undefined);
  optionalNumber(object, key, what, options);
}

const KV_POLICIES: readonly KvPolicyName[] = ["full", "pyramid", "streaming", "h2o"];
const KV_NUMBER_KEYS = [
  "targetRatio",
  "recentRatio",
  "decayRatio",
  "layerInterval",
  "minContext",
  "sinkTokens",
  "distanceWeight",
  "genDecayRatio",
  "genCompressRatio",
  "exceedLength",
  "maxLayerTokens",
] as const satisfies readonly (keyof KvPolicyOptions)[];

// Ranges are the engine's to check (its message names the option); here only the form.
function checkKv(value: unknown, what: string): void {
  if (value === undefined) return;
  if (!isObject(value)) fail(what, "an object", value);
  const known = new Set<string>(["policy", "decodeCompression", ...KV_NUMBER_KEYS]);
  for (const key of Object.keys(value)) if (!known.has(key)) throw new ProtocolError(`${what} has an unknown option "${key}"`);
  if (value.policy !== undefined && !KV_POLICIES.includes(value.policy as KvPolicyName)) {
    fail(`${what}.policy`, KV_POLICIES.join(" | "), value.policy);
  }
  if (value.decodeCompression !== undefined && typeof value.decodeCompression !== "boolean") {
    fail(`${what}.decodeCompression`, "a boolean", value.decodeCompression);
  }
  for (const key of KV_NUMBER_KEYS) optionalNumber(value, key, what);
}

function checkLoad(params: Json, what: string): void {
  if (requireString(params, "path", what) === "") throw new ProtocolError(`${what}.path is empty`);
  optionalNumber(params, "contextSize", what, { min: 0, whole: true });
  optionalNumber(params, "threads", what, { min: 0, whole: true });
  optionalNumber(params, "gpuLayers", what, { min: -1, whole: true });
  checkKv(params.kv, `${what}.kv`);
}

const PARAM_CHECKS: { [M in EngineMethod]: (params: Json, what: string) => void } = {
  loadModel: checkLoad,
  complete(params, what) {
    requireString(params, "prefix", what);
    requireString(params, "suffix", what);
    if (params.format !== "spm" && params.format !== "psm") fail(`${what}.format`, '"spm" or "psm"', params.format);
    requireNumber(params, "maxTokens", what, { min: 1, whole: true });
    optionalNumber(params, "temperature", what, { min: 0 });
    optionalNumber(params, "topK", what, { min: 0, whole: true });
    optionalNumber(params, "topP", what, { min: 0 });
    optionalNumber(params, "minP", what, { min: 0 });
    optionalNumber(params, "repeatPenalty", what, { min: 0 });
    optionalNumber(params, "seed", what, { whole: true });
    if (params.stop !== undefined && !(Array.isArray(params.stop) && params.stop.every((s) => typeof s === "string"))) {
      fail(`${what}.stop`, "an array of strings", params.stop);
    }
    if (params.stream !== undefined && typeof params.stream !== "boolean") fail(`${what}.stream`, "a boolean", params.stream);
    if (params.freshSession !== undefined && typeof params.freshSession !== "boolean") {
      fail(`${what}.freshSession`, "a boolean", params.freshSession);
    }
  },
  explain(params, what) {
    if (!isObject(params.load)) fail(`${what}.load`, "an object", params.load);
    checkLoad(params.load, `${what}.load`);
    requireString(params, "code", what);
    for (const key of ["language", "context"]) {
      if (params[key] !== undefined && typeof params[key] !== "string") fail(`${what}.${key}`, "a string", params[key]);
    }
    requireNumber(params, "maxTokens", what, { min: 1, whole: true });
    optionalNumber(params, "temperature", what, { min: 0 });
    if (params.stream !== undefined && typeof params.stream !== "boolean") fail(`${what}.stream`, "a boolean", params.stream);
  },
  countTokens(params, what) {
    requireString(params, "text", what);
  },
  cancel(params, what) {
    requireId(params.target, `${what}.target`);
  },
  kvStats() {},
  planKv(params, what) {
    requireNumber(params, "tokens", what, { min: 0, whole: true });
    optionalNumber(params, "layers", what, { min: 1, whole: true });
    optionalNumber(params, "kvDim", what, { min: 1, whole: true });
    checkKv(params.kv, `${what}.kv`);
  },
  unload() {},
  shutdown() {},
};

/** Checks a message received by the host; returns it typed, or throws a ProtocolError naming what is wrong. */
export function parseRequest(message: unknown): RequestMessage {
  if (!isObject(message)) fail("a request", "an object", message);
  if (message.type !== "request") fail("request.type", '"request"', message.type);
  requireId(message.id, "request.id");
  const method = message.method;
  if (typeof method !== "string" || !(ENGINE_METHODS as readonly string[]).includes(method)) {
    fail("request.method", ENGINE_METHODS.join(" | "), method);
  }
  const params = message.params ?? {};
  if (!isObject(params)) fail(`${method} params`, "an object", params);
  PARAM_CHECKS[method as EngineMethod](params, method);
  return { type: "request", id: message.id as number, method: method as EngineMethod, params } as RequestMessage;
}

const ERROR_CODES: readonly EngineErrorCode[] = [
  "bad-request",
  "model-not-found",
  "no-infill",
  "no-model",
  "too-long",
  "cancelled",
  "host-exited",
  "disposed",
  "timeout",
  "engine",
];

/** Checks a message received by the client from the host. Results are trusted to match their method. */
export function parseHostMessage(message: unknown): HostMessage {
  if (!isObject(message)) fail("a host message", "an object", message);
  switch (message.type) {
    case "ready":
      requireId(message.pid, "ready.pid");
      requireId(message.protocol, "ready.protocol");
      return { type: "ready", pid: message.pid as number, protocol: message.protocol as number };
    case "event":
      requireId(message.id, "event.id");
      if (message.event !== "token") fail("event.event", '"token"', message.event);
      requireString(message, "text", "event");
      if (message.count !== undefined) requireId(message.count, "event.count");
      return {
        type: "event",
        id: message.id as number,
        event: "token",
        text: message.text as string,
        ...(message.count !== undefined ? { count: message.count as number } : {}),
      };
    case "response": {
      const id = requireId(message.id, "response.id");
      if (message.ok === true) return { type: "response", id, ok: true, result: message.result };
      if (message.ok !== false) fail("response.ok", "a boolean", message.ok);
      const error = message.error;
      if (!isObject(error)) fail("response.error", "an object", error);
      const code = ERROR_CODES.includes(error.code as EngineErrorCode) ? (error.code as EngineErrorCode) : "engine";
      return { type: "response", id, ok: false, error: { code, message: requireString(error, "message", "response.error") } };
    }
    default:
      fail("host message type", '"ready", "event" or "response"', message.type);
  }
}

/** Whether two loads give the same model and session, so the loaded one (and its cached prefix) can be kept. */
export function sameLoad(a: LoadModelParams, b: LoadModelParams): boolean {
  return (
    a.path === b.path &&
    (a.contextSize || 0) === (b.contextSize || 0) &&
    (a.threads || 0) === (b.threads || 0) &&
    (a.gpuLayers ?? 0) === (b.gpuLayers ?? 0) &&
    canonicalJson(a.kv ?? {}) === canonicalJson(b.kv ?? {})
  );
}

function canonicalJson(value: unknown): string {
  if (!isObject(value)) return JSON.stringify(value) ?? "undefined";
  const keys = Object.keys(value).filter((key) => value[key] !== undefined).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(",")}}`;
}
