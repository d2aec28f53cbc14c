// The engine host: a Node child process (forked by EngineClient with the IPC channel) and the only process of the
// extension that loads the native addon, so a crash in native code takes down this process, never VS Code's
// extension host. It holds at most one model and ONE session for it: consecutive completions share the session, so
// each keystroke re-reads only the tokens after the longest prefix it has in common with the previous prompt.
//
// Requests that use the session (loadModel, complete, unload, shutdown) run one after another in arrival order; cancel,
// kvStats and planKv answer at once. A cancel reaches the native loop through the request's AbortSignal.
import { existsSync, statSync } from "node:fs";

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
  type HostMessage,
  type LoadModelParams,
  type ModelSummary,
  type ParamsOf,
  type RequestMessage,
  type ResultOf,
} from "../core/protocol";
import { Model, planKv, type Session } from "./engine";

/** Below this many prompt tokens an infill prompt has no room for useful context. */
const MIN_PROMPT_BUDGET = 16;
/** Rounds of trimming before giving up: trimPrefixToBudget estimates tokens from characters, the tokenizer decides. */
const MAX_TRIM_ROUNDS = 6;

interface Loaded {
  params: LoadModelParams;
  model: Model;
  session: Session;
}

export class EngineHost {
  private loaded: Loaded | undefined;
  /** The tail of the chain of session work; each exclusive request runs after the one before it settles. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Requests received and not yet answered that a cancel can stop. */
  private readonly aborts = new Map<number, AbortController>();
  private closed = false;

  constructor(
    private readonly send: (message: HostMessage) => void,
    private readonly exit: (code: number) => void = () => {},
  ) {}

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
    if (request.method === "cancel" || request.method === "kvStats" || request.method === "planKv") {
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
        return (this.loaded?.session.kvStats() ?? null) satisfies ResultOf<"kvStats">;
      case "planKv": {
        const { tokens, kv, layers, kvDim } = request.params;
        if (layers !== undefined && kvDim !== undefined) return planKv({ layers, kvDim, tokens, kv });
        if (!this.loaded) throw new EngineError("no-model", "planKv needs a loaded model, or layers and kvDim");
        return this.loaded.model.planKv(tokens, kv ?? this.loaded.params.kv ?? {});
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
      case "unload": {
        const unloaded = this.loaded !== undefined;
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

  private summary(loadMs: number): ModelSummary {
    const { model, session, params } = this.loaded!;
    const info = model.info;
    return {
      path: params.path,
      name: info.config.name,
      fileSize: info.fileSize,
      hasInfill: info.hasInfill,
      contextLength: info.config.contextLength,
      contextSize: session.contextSize,
      layers: info.config.layers,
      kvPolicy: params.kv?.policy ?? "full",
      loadMs,
    };
  }

  async loadModel(params: ParamsOf<"loadModel">): Promise<ModelSummary> {
    const started = performance.now();
    if (this.loaded && sameLoad(this.loaded.params, params)) return this.summary(0);
    let model: Model;
    if (this.loaded && this.loaded.params.path === params.path) {
      // Same file, other session options: keep the weights, make a new session.
      this.loaded.session.dispose();
      model = this.loaded.model;
      this.loaded = undefined;
    } else {
      this.unload();
      if (!existsSync(params.path)) throw new EngineError("model-not-found", `model file not found: ${params.path}`);
      if (!statSync(params.path).isFile()) throw new EngineError("model-not-found", `the model path is not a file: ${params.path}`);
      try {
        model = await Model.load(params.path);
      } catch (error) {
        throw new EngineError("engine", `cannot load ${params.path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    let session: Session;
    try {
      session = await this.createSession(model, params);
    } catch (error) {
      model.dispose();
      throw new EngineError("engine", `cannot start a session on ${params.path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.loaded = { params: { ...params }, model, session };
    return this.summary(Math.round(performance.now() - started));
  }

  private createSession(model: Model, params: LoadModelParams): Promise<Session> {
    // The setting is one number for every model: a model with a shorter context gets all of its own.
    return model.createSession({
      contextSize: params.contextSize ? Math.min(params.contextSize, model.info.config.contextLength) : undefined,
      threads: params.threads || undefined,
      kv: params.kv,
    });
  }

  async complete(params: CompleteParams, signal: AbortSignal, id: number): Promise<CompleteResult> {
    const started = performance.now();
    const cancelled = (): CompleteResult => ({
      text: "",
      stopReason: "cancelled",
      timings: { promptTokens: 0, reusedTokens: 0, promptMs: 0, genTokens: 0, genMs: 0, totalMs: Math.round(performance.now() - started) },
      kv: this.loaded?.session.kvStats() ?? null,
      trimmedPrefixChars: 0,
    });
    if (signal.aborted) return cancelled();
    if (!this.loaded) throw new EngineError("no-model", "no model is loaded");
    const { model } = this.loaded;
    if (!model.info.hasInfill) {
      throw new EngineError("no-infill", noInfillMessage(model.info.config.name, this.loaded.params.path));
    }
    if (params.freshSession) {
      // Benchmarks: a new session with the same options, so no prefix of the previous prompt is reused.
      this.loaded.session.dispose();
      try {
        this.loaded.session = await this.createSession(model, this.loaded.params);
      } catch (error) {
        model.dispose();
        this.loaded = undefined;
        throw new EngineError("engine", `cannot start a new session: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const session = this.loaded.session;
    const { tokens, trimmedPrefixChars } = await this.fitInfill(session, params);
    if (signal.aborted) return cancelled();
    const { maxTokens, temperature, topK, topP, minP, repeatPenalty, seed, stop } = params;
    try {
      const result = await session.generate({ tokens }, {
        maxTokens,
        temperature,
        topK,
        topP,
        minP,
        repeatPenalty,
        seed,
        stop,
        signal,
        onToken: params.stream ? (text) => text && this.send({ type: "event", id, event: "token", text }) : undefined,
      });
      return {
        text: result.text,
        stopReason: result.stopReason,
        timings: { ...result.timings, totalMs: Math.round(performance.now() - started) },
        kv: result.kv,
        trimmedPrefixChars,
      };
    } catch (error) {
      // Aborted before the native loop started: not an error, a request that produced nothing.
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

  unload(): void {
    const loaded = this.loaded;
    this.loaded = undefined;
    loaded?.session.dispose();
    loaded?.model.dispose();
  }

  /** Stops everything, for a host whose parent went away. */
  close(): void {
    this.closed = true;
    for (const controller of this.aborts.values()) controller.abort();
    // Disposing during a native request is safe (the engine waits for it), but let queued work see `closed` first.
    void this.tail.finally(() => this.unload());
  }
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

main();
