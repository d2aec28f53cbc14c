// The engine host: a Node child process (forked by EngineClient with the IPC channel) and the only process of the
// extension that loads the native addon, so a crash in native code takes down this process, never VS Code's
// extension host. It holds the completion model with ONE session for completions: consecutive completions share it,
// so each keystroke re-reads only the tokens after the longest prefix it has in common with the previous prompt.
// Explanations run in a second session, on the completion model or on a separate Instruct model (explain.modelPath)
// that is loaded alongside when memory allows and swapped in for the completion model when it does not.
//
// Requests that use a session (loadModel, complete, explain, unload, shutdown) run one after another in arrival
// order; cancel, kvStats, planKv and countTokens answer at once. A cancel reaches the native loop through the
// request's AbortSignal.
import { existsSync, statSync } from "node:fs";
import os from "node:os";

import { explainRequest } from "../core/explain-prompt";
import { trimPrefixToBudget } from "../core/fim-context";
import {
  EngineError,
  PROTOCOL_VERSION,
  noInfillMessage,
  ProtocolError,
  parseRequest,
  sameLoad,
  type CompleteParams,
  type CompleteResult,
  type CompleteTimings,
  type ExplainParams,
  type ExplainResult,
  type HostMessage,
  type LoadModelParams,
  type ModelSummary,
  type ParamsOf,
  type RequestMessage,
  type ResultOf,
} from "../core/protocol";
import { describeModelFile, Model, planKv, type GenerateResult, type ModelFileDetails, type PromptInput, type Session } from "./engine";

/** Below this many prompt tokens an infill prompt has no room for useful context. */
const MIN_PROMPT_BUDGET = 16;
/** Rounds of trimming before giving up: trimPrefixToBudget estimates tokens from characters, the tokenizer decides. */
const MAX_TRIM_ROUNDS = 6;
/**
 * What a second model needs beyond its file to be loaded alongside the first: its KV cache and buffers. A rough
 * allowance, since an explanation's cache grows with its prompt; the engine's own check refuses a request whose cache
 * does not fit, so a low estimate costs a clear error, not a crash.
 */
const SECOND_MODEL_ALLOWANCE_BYTES = 512 * 2 ** 20;

type Purpose = "complete" | "explain";

/** A model in memory and the sessions that use it, each made with the load options it was asked for. */
interface Loaded {
  model: Model;
  details: ModelFileDetails;
  /** The options it was loaded with (the completion model's; for a separate explanation model, its first request's). */
  params: LoadModelParams;
  sessions: Partial<Record<Purpose, { session: Session; params: LoadModelParams }>>;
}

export interface EngineHostOptions {
  /** Bytes the machine can still give (default: os.freemem, MemAvailable on Linux); tests pass their own. */
  availableMemory?: () => number;
}

export class EngineHost {
  /** The completion model. */
  private completion: Loaded | undefined;
  /** A separate model for explanations (explain.modelPath), when it is another file. */
  private explainer: Loaded | undefined;
  /** The tail of the chain of session work; each exclusive request runs after the one before it settles. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Requests received and not yet answered that a cancel can stop. */
  private readonly aborts = new Map<number, AbortController>();
  private closed = false;
  private readonly availableMemory: () => number;

  constructor(
    private readonly send: (message: HostMessage) => void,
    private readonly exit: (code: number) => void = () => {},
    options: EngineHostOptions = {},
  ) {
    this.availableMemory = options.availableMemory ?? (() => os.freemem());
  }

  /** Handles one received message; every request is answered, a malformed one with a bad-request error. */
  receive(message: unknown): void {
    let request: RequestMessage;
    try {
      request = parseRequest(message);
    } catch (error) {
      const id = typeof message === "object" && message !== null ? (message as { id?: unknown }).id : undefined;
      const text = error instanceof Error ? error.message : String(error);
      if (Number.isSafeInteger(id)) this.reply(id as number, new EngineError("bad-request", text));
      else process.stderr.write(`engine host: dropped a malformed message: ${text}\n`);
      return;
    }
    const id = request.id;
    if (request.method === "cancel" || request.method === "kvStats" || request.method === "planKv" || request.method === "countTokens") {
      this.answer(id, async () => this.immediate(request));
      return;
    }
    const abort = new AbortController();
    this.aborts.set(id, abort);
    if (request.method === "unload" || request.method === "shutdown") {
      // Whatever still runs or waits is about to lose its model: stop it now rather than after it finishes.
      for (const [other, controller] of this.aborts) if (other !== id) controller.abort();
    }
    const run = this.tail.then(() => this.exclusive(request, abort.signal));
    this.tail = run.catch(() => {});
    this.answer(id, () => run).finally(() => this.aborts.delete(id));
  }

  private async answer(id: number, work: () => Promise<unknown>): Promise<void> {
    try {
      this.reply(id, undefined, await work());
    } catch (error) {
      this.reply(id, error);
    }
  }

  private reply(id: number, error: unknown, result?: unknown): void {
    if (error === undefined) {
      this.send({ type: "response", id, ok: true, result: result === undefined ? {} : result });
      return;
    }
    const payload =
      error instanceof EngineError
        ? error.toPayload()
        : { code: error instanceof ProtocolError ? ("bad-request" as const) : ("engine" as const), message: error instanceof Error ? error.message : String(error) };
    this.send({ type: "response", id, ok: false, error: payload });
  }

  private async immediate(request: RequestMessage): Promise<unknown> {
    switch (request.method) {
      case "cancel": {
        const controller = this.aborts.get(request.params.target);
        controller?.abort();
        return { cancelled: controller !== undefined } satisfies ResultOf<"cancel">;
      }
      case "kvStats":
        return (this.completion?.sessions.complete?.session.kvStats() ?? null) satisfies ResultOf<"kvStats">;
      case "planKv": {
        const { tokens, kv, layers, kvDim } = request.params;
        if (layers !== undefined && kvDim !== undefined) return planKv({ layers, kvDim, tokens, kv });
        if (!this.completion) throw new EngineError("no-model", "planKv needs a loaded model, or layers and kvDim");
        return this.completion.model.planKv(tokens, kv ?? this.completion.params.kv ?? {});
      }
      case "countTokens": {
        if (!this.completion) throw new EngineError("no-model", "countTokens needs a loaded model");
        const tokens = await this.completion.model.tokenize(request.params.text, { addBos: false });
        return { tokens: tokens.length } satisfies ResultOf<"countTokens">;
      }
      default:
        throw new ProtocolError(`${request.method} is not an immediate request`);
    }
  }

  private async exclusive(request: RequestMessage, signal: AbortSignal): Promise<unknown> {
    if (this.closed) throw new EngineError("disposed", "the engine host is shutting down");
    switch (request.method) {
      case "loadModel":
        return this.loadModel(request.params);
      case "complete":
        return this.complete(request.params, signal, request.id);
      case "explain":
        return this.explain(request.params, signal, request.id);
      case "unload": {
        const unloaded = this.completion !== undefined || this.explainer !== undefined;
        this.unload();
        return { unloaded } satisfies ResultOf<"unload">;
      }
      case "shutdown":
        this.closed = true;
        this.unload();
        // Answer first; exit once the response is on its way.
        setImmediate(() => this.exit(0));
        return {} satisfies ResultOf<"shutdown">;
      default:
        throw new ProtocolError(`${request.method} is not an exclusive request`);
    }
  }

  private summary(loaded: Loaded, params: LoadModelParams, loadMs: number): ModelSummary {
    const info = loaded.model.info;
    const { config } = info;
    return {
      path: params.path,
      name: config.name,
      fileSize: info.fileSize,
      ...loaded.details,
      hasInfill: info.hasInfill,
      contextLength: config.contextLength,
      contextSize: contextSizeFor(loaded.model, params),
      layers: config.layers,
      kvDim: config.kvHeads * config.headDim,
      kvPolicy: params.kv?.policy ?? "full",
      loadMs,
    };
  }

  /** Loads the completion model, keeping whatever of the loaded state these options allow. */
  async loadModel(params: ParamsOf<"loadModel">): Promise<ModelSummary> {
    const started = performance.now();
    const current = this.completion;
    if (current && sameLoad(current.params, params) && current.sessions.complete) return this.summary(current, params, 0);
    // Same file, or the file loaded for explanations: keep the weights; session() remakes a session whose options
    // differ.
    if (current?.params.path === params.path) {
      current.params = { ...params };
    } else if (this.explainer?.params.path === params.path) {
      this.unloadCompletion();
      this.completion = this.explainer;
      this.explainer = undefined;
      this.completion.params = { ...params };
    } else {
      this.unloadCompletion();
      if (this.explainer && !this.fitsAlongside(params.path)) this.unloadExplainer();
      this.completion = await this.open(params);
    }
    const loaded = this.completion!;
    await this.session(loaded, "complete", params);
    return this.summary(loaded, params, Math.round(performance.now() - started));
  }

  /** Loads a model file, with clear errors for a missing file and one the engine cannot read. */
  private async open(params: LoadModelParams): Promise<Loaded> {
    if (!existsSync(params.path)) throw new EngineError("model-not-found", `model file not found: ${params.path}`);
    if (!statSync(params.path).isFile()) throw new EngineError("model-not-found", `the model path is not a file: ${params.path}`);
    let model: Model;
    try {
      model = await Model.load(params.path);
    } catch (error) {
      throw new EngineError("engine", `cannot load ${params.path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      return { model, details: await describeModelFile(params.path), params: { ...params }, sessions: {} };
    } catch (error) {
      model.dispose();
      throw new EngineError("engine", `cannot read ${params.path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The model's session for `purpose`, made (again) when it has none or one with other options. */
  private async session(loaded: Loaded, purpose: Purpose, params: LoadModelParams): Promise<Session> {
    const existing = loaded.sessions[purpose];
    if (existing && sameLoad(existing.params, params)) return existing.session;
    existing?.session.dispose();
    delete loaded.sessions[purpose];
    try {
      // The setting is one number for every model: a model with a shorter context gets all of its own.
      const session = await loaded.model.createSession({
        contextSize: contextSizeFor(loaded.model, params),
        threads: params.threads || undefined,
        kv: params.kv,
      });
      loaded.sessions[purpose] = { session, params: { ...params } };
      return session;
    } catch (error) {
      throw new EngineError("engine", `cannot start a session on ${params.path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Whether the file at `path` can be loaded while the models in memory stay. */
  private fitsAlongside(path: string): boolean {
    return statSync(path).size + SECOND_MODEL_ALLOWANCE_BYTES <= this.availableMemory();
  }

  async complete(params: CompleteParams, signal: AbortSignal, id: number): Promise<CompleteResult> {
    const started = performance.now();
    const cancelled = (): CompleteResult => ({
      text: "",
      stopReason: "cancelled",
      timings: { ...NO_TIMINGS, totalMs: Math.round(performance.now() - started) },
      kv: this.completion?.sessions.complete?.session.kvStats() ?? null,
      trimmedPrefixChars: 0,
    });
    if (signal.aborted) return cancelled();
    const loaded = this.completion;
    if (!loaded) throw new EngineError("no-model", "no model is loaded");
    const { model } = loaded;
    if (!model.info.hasInfill) throw new EngineError("no-infill", noInfillMessage(model.info.config.name, loaded.params.path));
    if (params.freshSession) {
      // Benchmarks: a new session with the same options, so no prefix of the previous prompt is reused.
      loaded.sessions.complete?.session.dispose();
      delete loaded.sessions.complete;
    }
    const session = await this.session(loaded, "complete", loaded.params);
    const { tokens, trimmedPrefixChars } = await this.fitInfill(session, params);
    if (signal.aborted) return cancelled();
    try {
      const { result, timings } = await this.generate(session, { tokens }, params, signal, id, started);
      return { text: result.text, stopReason: result.stopReason, timings, kv: result.kv, trimmedPrefixChars };
    } catch (error) {
      // Aborted before the native loop started: not an error, a request that produced nothing.
      if (signal.aborted) return cancelled();
      throw error;
    }
  }

  /** Runs one generation, streaming its text as token events when asked, and times it from `started`. */
  private async generate(
    session: Session,
    prompt: PromptInput,
    params: Pick<CompleteParams, "maxTokens" | "temperature" | "topK" | "topP" | "minP" | "repeatPenalty" | "seed" | "stop" | "stream">,
    signal: AbortSignal,
    id: number,
    started: number,
  ): Promise<{ result: GenerateResult; timings: CompleteTimings }> {
    const { maxTokens, temperature, topK, topP, minP, repeatPenalty, seed, stop } = params;
    let firstTokenMs = 0;
    let count = 0;
    const result = await session.generate(prompt, {
      maxTokens,
      temperature,
      topK,
      topP,
      minP,
      repeatPenalty,
      seed,
      stop,
      signal,
      onToken: (text) => {
        count++;
        if (!text) return;
        if (firstTokenMs === 0) firstTokenMs = Math.max(1, Math.round(performance.now() - started));
        if (params.stream) this.send({ type: "event", id, event: "token", text, count });
      },
    });
    return { result, timings: { ...result.timings, firstTokenMs, totalMs: Math.round(performance.now() - started) } };
  }

  /**
   * Explains code with the Instruct template, in an explanation session of its own so that the completion session's
   * cached prefix survives. The model is the completion model, a separate one loaded before, or `params.load`'s file
   * loaded now: alongside the completion model when memory allows, in its place when not.
   */
  async explain(params: ExplainParams, signal: AbortSignal, id: number): Promise<ExplainResult> {
    const started = performance.now();
    const target = params.load;
    let swappedOut = false;
    let loaded: Loaded;
    if (this.completion?.params.path === target.path) {
      loaded = this.completion;
    } else if (this.explainer?.params.path === target.path) {
      loaded = this.explainer;
    } else {
      this.unloadExplainer();
      if (this.completion && !this.fitsAlongside(target.path)) {
        this.unloadCompletion();
        swappedOut = true;
      }
      this.explainer = await this.open(target);
      loaded = this.explainer;
    }
    const session = await this.session(loaded, "explain", target);
    const budget = session.contextSize - params.maxTokens;
    const chatOf = (context: string | undefined): PromptInput => {
      const request = explainRequest(params.code, params.language, context);
      return { chat: { system: request.system, turns: [{ user: request.user }] } };
    };
    let prompt = chatOf(params.context);
    let promptTokens = (await session.promptTokens(prompt)).length;
    const contextDropped = params.context !== undefined && promptTokens > budget;
    if (contextDropped) {
      prompt = chatOf(undefined);
      promptTokens = (await session.promptTokens(prompt)).length;
    }
    if (promptTokens > budget) {
      throw new EngineError(
        "too-long",
        `the selection makes a prompt of ${promptTokens} tokens, and with ${params.maxTokens} for the answer the context of ` +
          `${session.contextSize} tokens holds ${Math.max(0, budget)}: select less, or raise pyramidCoder.contextSize`,
      );
    }
    const answered = { model: this.summary(loaded, target, 0), contextDropped, swappedOut };
    const cancelled = (): ExplainResult => ({
      text: "",
      stopReason: "cancelled",
      timings: { ...NO_TIMINGS, totalMs: Math.round(performance.now() - started) },
      kv: null,
      ...answered,
    });
    if (signal.aborted) return cancelled();
    try {
      const { result, timings } = await this.generate(session, prompt, params, signal, id, started);
      return { text: result.text, stopReason: result.stopReason, timings, kv: result.kv, ...answered };
    } catch (error) {
      if (signal.aborted) return cancelled();
      throw error;
    }
  }

  /**
   * The infill prompt's tokens, within the session's context less the tokens to generate: the start of the prefix
   * (the text farthest above the cursor) goes first, then, only if the prefix is gone, the end of the suffix.
   */
  private async fitInfill(session: Session, params: CompleteParams): Promise<{ tokens: Int32Array | number[]; trimmedPrefixChars: number }> {
    const budget = session.contextSize - params.maxTokens;
    if (budget < MIN_PROMPT_BUDGET) {
      throw new EngineError(
        "bad-request",
        `maxTokens ${params.maxTokens} leaves no room for the prompt in a context of ${session.contextSize} tokens`,
      );
    }
    let { prefix, suffix } = params;
    const promptOf = () => session.promptTokens({ infill: { prefix, suffix, format: params.format } });
    let tokens = await promptOf();
    for (let round = 0; tokens.length > budget; round++) {
      if (round === MAX_TRIM_ROUNDS) {
        throw new EngineError("engine", `the infill prompt (${tokens.length} tokens) does not fit the budget of ${budget} tokens`);
      }
      const over = tokens.length - budget;
      if (prefix.length > 0) {
        // Each round asks for more than the last missed by, as the estimate of tokens per character may be low.
        // Tokens per character measured on this very prompt: closer than a generic estimate, which for dense code
        // counts low and so would cut far more than needed.
        const perChar = tokens.length / Math.max(1, prefix.length + suffix.length);
        const trimmed = trimPrefixToBudget(prefix, over * (round + 1), (text) => Math.ceil(text.length * perChar));
        // trimPrefixToBudget keeps the cursor's line whole; a line longer than the budget (minified code) is cut too.
        prefix = trimmed.length < prefix.length ? trimmed : prefix.slice(Math.min(prefix.length, 4 * over * (round + 1)));
      } else {
        suffix = suffix.slice(0, Math.floor((suffix.length * budget) / tokens.length));
      }
      tokens = await promptOf();
    }
    return { tokens, trimmedPrefixChars: params.prefix.length - prefix.length };
  }

  private unloadCompletion(): void {
    const loaded = this.completion;
    this.completion = undefined;
    if (loaded) disposeLoaded(loaded);
  }

  private unloadExplainer(): void {
    const loaded = this.explainer;
    this.explainer = undefined;
    if (loaded) disposeLoaded(loaded);
  }

  unload(): void {
    this.unloadCompletion();
    this.unloadExplainer();
  }

  /** Stops everything, for a host whose parent went away. */
  close(): void {
    this.closed = true;
    for (const controller of this.aborts.values()) controller.abort();
    // Disposing during a native request is safe (the engine waits for it), but let queued work see `closed` first.
    void this.tail.finally(() => this.unload());
  }
}

const NO_TIMINGS: CompleteTimings = { promptTokens: 0, reusedTokens: 0, promptMs: 0, genTokens: 0, genMs: 0, firstTokenMs: 0, totalMs: 0 };

/** The context a session of `model` gets for these options: the setting, capped at the model's context length. */
function contextSizeFor(model: Model, params: LoadModelParams): number {
  const length = model.info.config.contextLength;
  return params.contextSize ? Math.min(params.contextSize, length) : length;
}

function disposeLoaded(loaded: Loaded): void {
  for (const entry of Object.values(loaded.sessions)) entry?.session.dispose();
  loaded.model.dispose();
}

function main(): void {
  const send = process.send?.bind(process);
  if (!send) {
    process.stderr.write("engine-host.js is started by the Pyramid Coder extension (child_process.fork with an IPC channel)\n");
    process.exit(2);
  }
  const host = new EngineHost(
    (message) => {
      // The channel is gone when the parent died; the disconnect handler below ends this process.
      if (process.connected) send(message);
    },
    (code) => {
      // The client disconnects on the shutdown response, which ends this process (nothing else keeps it alive);
      // the timer only stops a host whose client never does.
      process.exitCode = code;
      setTimeout(() => process.exit(code), 2000);
    },
  );
  process.on("message", (message) => host.receive(message));
  process.on("disconnect", () => {
    host.close();
    setTimeout(() => process.exit(0), 200).unref();
  });
  send({ type: "ready", pid: process.pid, protocol: PROTOCOL_VERSION });
}

// Run as the host process (the bundle, forked); imported (tests), only the class.
if (typeof module !== "undefined" && typeof require !== "undefined" && require.main === module) main();
