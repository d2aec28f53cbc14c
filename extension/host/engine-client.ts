// The extension's side of the engine host (engine-host.ts): forks it, sends typed requests with ids, delivers streamed
// tokens, turns an AbortSignal into a cancel message, loads the model lazily on first use and unloads it after an
// idle time, and restarts the host with exponential backoff when it dies, so a native crash costs one request, not
// the editor. No vscode import and no addon: it runs in VS Code's extension host and in tests under plain Node.
import { fork, type ChildProcess } from "node:child_process";

import type { KvPlan, KvStats } from "./native";
import {
  EngineError,
  PROTOCOL_VERSION,
  parseHostMessage,
  sameLoad,
  type CompleteParams,
  type CompleteResult,
  type CompleteTimings,
  type EngineMethod,
  type ExplainParams,
  type ExplainResult,
  type HostMessage,
  type LoadModelParams,
  type ModelSummary,
  type ParamsOf,
  type PlanKvParams,
  type ResultOf,
} from "../core/protocol";

/** How to start the host process. In VS Code: the editor's own executable with ELECTRON_RUN_AS_NODE=1. */
export interface SpawnOptions {
  /** The Node (or Electron) executable; default process.execPath. */
  execPath?: string;
  /** Flags for it; default none (the parent's flags, such as an inspector port, are not inherited). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
}

export interface EngineClientOptions {
  spawn?: SpawnOptions;
  /** Delay before the first restart after the host dies; doubled for each further death in a row. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** Deaths in a row after which the client stops restarting by itself (the next request tries again). */
  maxRestarts?: number;
  /** A host that lived this long before dying counts as a first death again. */
  stableAfterMs?: number;
  /** Milliseconds without a request after which the model is unloaded; read each time, 0 or less never. */
  idleUnloadMs?: () => number;
  /** How long a starting host may take to say it is ready. */
  startTimeoutMs?: number;
  /** Lines the host writes to stdout/stderr, and the client's own notes (restarts). */
  log?: (line: string) => void;
}

export type HostState = "stopped" | "starting" | "running" | "restarting" | "failed";
export type ModelState = "none" | "loading" | "loaded" | "error";

export interface EngineState {
  host: HostState;
  model: ModelState;
  /** Completions or explanations sent and not yet answered. */
  generating: boolean;
  /** The loaded (or last loading) completion model. */
  summary?: ModelSummary;
  /** The model of the last explanation, when it is another file than the completion model's. */
  explainModel?: ModelSummary;
  /** The generation running now, as its tokens stream in (updated at most every LIVE_UPDATE_MS). */
  live?: LiveGeneration;
  /** Timings of the last completion that generated text. */
  lastCompletion?: CompleteTimings & { at: number };
  /** The last failure worth showing: a model that would not load, a host that died. */
  error?: string;
  /** Times the host has been restarted after dying. */
  restarts: number;
  /** The session's cache after the last completion. */
  kv?: KvStats;
  pid?: number;
}

export interface LiveGeneration {
  kind: "complete" | "explain";
  /** Tokens generated so far. */
  tokens: number;
  /** Date.now() when the request was sent, and when its first text came. */
  startedAt: number;
  firstTokenAt?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Streamed text of a complete or explain request (sets params.stream). */
  onToken?: (text: string) => void;
}

interface Pending {
  method: EngineMethod;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  onToken?: (text: string, count?: number) => void;
}

/** Streaming requests: what the status shows as generating. */
const GENERATING_METHODS: readonly EngineMethod[] = ["complete", "explain"];
/** Live token counts reach listeners at most this often (a status panel redraw per token would be wasted work). */
const LIVE_UPDATE_MS = 100;

const DEFAULTS = {
  restartDelayMs: 500,
  maxRestartDelayMs: 30_000,
  maxRestarts: 8,
  stableAfterMs: 60_000,
  startTimeoutMs: 30_000,
};

export class EngineClient {
  private readonly options: Required<Omit<EngineClientOptions, "spawn" | "idleUnloadMs" | "log">> & EngineClientOptions;
  private child: ChildProcess | undefined;
  /** Resolves to the running host; replaced when it dies. Undefined: none started (or the restarts gave up). */
  private hostReady: Promise<ChildProcess> | undefined;
  /** Counts host processes, so that answers and loads of a dead one are never mistaken for the current one's. */
  private incarnation = 0;
  private readyAt = 0;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private loaded: { params: LoadModelParams; summary: ModelSummary; incarnation: number } | undefined;
  private loading: { params: LoadModelParams; promise: Promise<ModelSummary> } | undefined;
  private disposed = false;
  private readonly listeners = new Set<(state: EngineState) => void>();
  private current: EngineState = { host: "stopped", model: "none", generating: false, restarts: 0 };

  constructor(
    private readonly hostPath: string,
    options: EngineClientOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  get state(): EngineState {
    return this.current;
  }

  /** The host's process id, when one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  onStateChange(listener: (state: EngineState) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private update(change: Partial<EngineState>): void {
    this.current = { ...this.current, ...change };
    for (const listener of this.listeners) listener(this.current);
  }

  // -------------------------------------------------------------------------------------------
  // The model

  /** Loads the model unless it is loaded with these options already (the host then keeps its session and cache). */
  ensureModel(params: LoadModelParams): Promise<ModelSummary> {
    if (this.loaded && this.loaded.incarnation === this.incarnation && sameLoad(this.loaded.params, params)) {
      return Promise.resolve(this.loaded.summary);
    }
    if (this.loading && sameLoad(this.loading.params, params)) return this.loading.promise;
    const promise = this.loadNow(params);
    this.loading = { params, promise };
    const settle = () => {
      if (this.loading?.promise === promise) this.loading = undefined;
    };
    promise.then(settle, settle);
    return promise;
  }

  private async loadNow(params: LoadModelParams): Promise<ModelSummary> {
    this.loaded = undefined;
    this.update({ model: "loading", error: undefined, kv: undefined });
    try {
      await this.host();
      const incarnation = this.incarnation;
      const summary = await this.request("loadModel", params);
      if (incarnation === this.incarnation) {
        this.loaded = { params: { ...params }, summary, incarnation };
        if (this.loading?.params === params) this.update({ model: "loaded", summary });
        this.armIdleTimer();
      }
      return summary;
    } catch (error) {
      if (this.loading?.params === params) {
        this.update({ model: "error", summary: undefined, error: error instanceof Error ? error.message : String(error) });
      }
      throw error;
    }
  }

  /** An infill completion with the model `load` describes, loaded first if need be. */
  async complete(load: LoadModelParams, params: CompleteParams, options: RequestOptions = {}): Promise<CompleteResult> {
    const cancelled = () => new EngineError("cancelled", "the completion was cancelled");
    if (options.signal?.aborted) throw cancelled();
    await this.ensureModel(load);
    if (options.signal?.aborted) throw cancelled();
    const result = await this.request("complete", params, options);
    this.update({
      ...(result.kv ? { kv: result.kv } : {}),
      ...(result.timings.genTokens > 0 ? { lastCompletion: { ...result.timings, at: Date.now() } } : {}),
    });
    return result;
  }

  /**
   * Explains code with the model `params.load` names: the completion model (ensureModel it first to see what it is)
   * or another file, which the host loads itself, unloading the completion model when both do not fit.
   */
  async explain(params: ExplainParams, options: RequestOptions = {}): Promise<ExplainResult> {
    if (options.signal?.aborted) throw new EngineError("cancelled", "the explanation was cancelled");
    await this.host();
    const incarnation = this.incarnation;
    const result = await this.request("explain", params, options);
    if (incarnation !== this.incarnation) return result;
    if (result.swappedOut) {
      this.loaded = undefined;
      this.update({ model: "none", summary: undefined, kv: undefined });
    }
    this.update({ explainModel: result.model.path === this.loaded?.params.path ? undefined : result.model });
    // Armed when the request settled, before the state named this model: again, now that it does.
    this.armIdleTimer();
    return result;
  }

  /** Tokens the loaded completion model makes of `text`. */
  async countTokens(text: string): Promise<number> {
    return (await this.request("countTokens", { text })).tokens;
  }
  kvStats(): Promise<KvStats | null> {
    return this.request("kvStats", {});
  }

  planKv(params: PlanKvParams): Promise<KvPlan> {
    return this.request("planKv", params);
  }

  /** Frees the models (and their caches) in the host; the next completion loads it again. Starts no host. */
  async unload(): Promise<void> {
    this.loaded = undefined;
    this.loading = undefined;
    this.clearIdleTimer();
    if (this.child && this.current.host === "running") await this.request("unload", {});
    this.update({ model: "none", summary: undefined, explainModel: undefined, kv: undefined });
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /** Sends one request and waits for its response; an aborted signal sends a cancel for it. */
  async request<M extends EngineMethod>(method: M, params: ParamsOf<M>, options: RequestOptions = {}): Promise<ResultOf<M>> {
    const child = await this.host();
    const { signal, onToken } = options;
    if (signal?.aborted) throw new EngineError("cancelled", `${method} was cancelled`);
    const id = this.nextId++;
    const streaming = GENERATING_METHODS.includes(method);
    const message = {
      type: "request",
      id,
      method,
      params: streaming ? { ...params, stream: onToken !== undefined } : params,
    };
    this.clearIdleTimer();
    const result = new Promise<ResultOf<M>>((resolve, reject) => {
      const live: LiveGeneration = { kind: method === "explain" ? "explain" : "complete", tokens: 0, startedAt: Date.now() };
      let shownAt = 0;
      const onStreamed = (text: string, count?: number) => {
        live.tokens = count ?? live.tokens + 1;
        const now = Date.now();
        live.firstTokenAt ??= now;
        if (now - shownAt >= LIVE_UPDATE_MS || shownAt === 0) {
          shownAt = now;
          this.update({ live: { ...live } });
        }
        onToken?.(text);
      };
      this.pending.set(id, { method, resolve: resolve as (result: unknown) => void, reject, onToken: streaming ? onStreamed : undefined });
      if (streaming) this.update({ generating: true, live: { ...live } });
      child.send(message, (error) => {
        if (error) this.settle(id, new EngineError("host-exited", `cannot reach the engine host: ${error.message}`));
      });
    });
    const cancel = () => {
      if (this.pending.has(id) && this.child === child && child.connected) {
        child.send({ type: "request", id: this.nextId++, method: "cancel", params: { target: id } }, () => {});
      }
    };
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await result;
    } finally {
      signal?.removeEventListener("abort", cancel);
      this.armIdleTimer();
    }
  }

  private settle(id: number, error: Error | undefined, result?: unknown): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (GENERATING_METHODS.includes(pending.method) && ![...this.pending.values()].some((p) => GENERATING_METHODS.includes(p.method))) {
      this.update({ generating: false, live: undefined });
    }
    if (error) pending.reject(error);
    else pending.resolve(result);
  }

  private receive(child: ChildProcess, raw: unknown, onReady: () => void): void {
    let message: HostMessage;
    try {
      message = parseHostMessage(raw);
    } catch (error) {
      this.log(`engine client: ignored a malformed message from the host: ${(error as Error).message}`);
      return;
    }
    if (child !== this.child) return;
    switch (message.type) {
      case "ready":
        if (message.protocol !== PROTOCOL_VERSION) {
          this.log(`engine client: the host speaks protocol ${message.protocol}, this client ${PROTOCOL_VERSION}`);
        }
        onReady();
        return;
      case "event":
        this.pending.get(message.id)?.onToken?.(message.text, message.count);
        return;
      case "response":
        if (message.ok) this.settle(message.id, undefined, message.result);
        else this.settle(message.id, EngineError.fromPayload(message.error));
        return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The host process

  /** The running host, started (or waited for, while it restarts) as needed. */
  private host(): Promise<ChildProcess> {
    if (this.disposed) return Promise.reject(new EngineError("disposed", "the engine client has been disposed"));
    if (!this.hostReady) this.hostReady = this.start(0);
    return this.hostReady;
  }

  private start(delayMs: number): Promise<ChildProcess> {
    const ready = new Promise<ChildProcess>((resolve, reject) => {
      const launch = () => {
        this.restartTimer = undefined;
        if (this.disposed) {
          reject(new EngineError("disposed", "the engine client has been disposed"));
          return;
        }
        this.launch(resolve, reject);
      };
      if (delayMs > 0) this.restartTimer = setTimeout(launch, delayMs);
      else launch();
    });
    // Nobody may be waiting on a restart; its failure is reported through the state and the next request.
    ready.catch(() => {});
    return ready;
  }

  private launch(resolve: (child: ChildProcess) => void, reject: (error: Error) => void): void {
    const { execPath = process.execPath, execArgv = [], env = process.env } = this.options.spawn ?? {};
    this.incarnation++;
    if (this.current.host !== "restarting") this.update({ host: "starting" });
    let child: ChildProcess;
    try {
      child = fork(this.hostPath, [], { execPath, execArgv, env, serialization: "json", stdio: ["ignore", "pipe", "pipe", "ipc"] });
    } catch (error) {
      this.update({ host: "failed", error: `cannot start the engine host: ${(error as Error).message}` });
      this.hostReady = undefined;
      reject(new EngineError("host-exited", `cannot start the engine host: ${(error as Error).message}`));
      return;
    }
    this.child = child;
    let isReady = false;
    let exited = false;
    const startTimer = setTimeout(() => {
      this.log(`engine client: the engine host did not start within ${this.options.startTimeoutMs} ms`);
      child.kill("SIGKILL");
    }, this.options.startTimeoutMs);
    const forward = (stream: NodeJS.ReadableStream | null) => {
      let buffered = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) this.log(line);
      });
    };
    forward(child.stdout);
    forward(child.stderr);
    child.on("message", (message) =>
      this.receive(child, message, () => {
        clearTimeout(startTimer);
        isReady = true;
        this.readyAt = Date.now();
        this.update({ host: "running", pid: child.pid });
        resolve(child);
      }),
    );
    const onExit = (description: string) => {
      if (exited) return;
      exited = true;
      clearTimeout(startTimer);
      this.exited(child, description, isReady, reject);
    };
    child.on("exit", (code, signal) => onExit(signal ? `killed by ${signal}` : `exit code ${code}`));
    child.on("error", (error) => onExit(`error: ${error.message}`));
  }

  /** A host process ended: fail what it owed, and start another after the backoff unless the client is done. */
  private exited(child: ChildProcess, description: string, wasReady: boolean, rejectStart: (error: Error) => void): void {
    if (child !== this.child) return;
    this.child = undefined;
    const error = new EngineError(
      this.disposed ? "disposed" : "host-exited",
      this.disposed ? "the engine client has been disposed" : `the engine host stopped (${description}); it is being restarted`,
    );
    rejectStart(error);
    for (const id of [...this.pending.keys()]) this.settle(id, error);
    this.loaded = undefined;
    this.loading = undefined;
    this.clearIdleTimer();
    if (this.disposed) {
      this.hostReady = undefined;
      this.update({ host: "stopped", model: "none", generating: false, pid: undefined });
      return;
    }
    if (wasReady && Date.now() - this.readyAt >= this.options.stableAfterMs) this.failures = 0;
    this.failures++;
    this.log(`engine client: the engine host stopped (${description})`);
    if (this.failures > this.options.maxRestarts) {
      this.hostReady = undefined;
      this.update({
        host: "failed",
        model: "none",
        summary: undefined,
        explainModel: undefined,
        generating: false,
        pid: undefined,
        error: `the engine host stopped ${this.failures} times in a row (last: ${description}); it starts again on the next request`,
      });
      this.failures = 0;
      return;
    }
    const delay = Math.min(this.options.restartDelayMs * 2 ** (this.failures - 1), this.options.maxRestartDelayMs);
    this.log(`engine client: restarting the engine host in ${delay} ms`);
    this.update({
      host: "restarting",
      model: "none",
      summary: undefined,
      explainModel: undefined,
      generating: false,
      pid: undefined,
      restarts: this.current.restarts + 1,
      error: `the engine host stopped (${description}); restarting`,
    });
    this.hostReady = this.start(delay);
  }

  // -------------------------------------------------------------------------------------------
  // Idle unload

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    const idleMs = this.options.idleUnloadMs?.() ?? 0;
    // An explanation model may be all that is loaded (it replaced the completion model): it is unloaded the same way.
    const holdsModel = () => this.loaded !== undefined || this.current.explainModel !== undefined;
    if (!(idleMs > 0) || this.pending.size > 0 || this.disposed || !holdsModel()) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.pending.size > 0 || !holdsModel()) return;
      this.log(`engine client: unloading the model after ${Math.round(idleMs / 1000)} s without a request`);
      this.unload().catch((error) => this.log(`engine client: idle unload failed: ${(error as Error).message}`));
    }, idleMs);
    // An idle timer alone must not keep a process (a test, a CLI) alive.
    this.idleTimer.unref();
  }

  // -------------------------------------------------------------------------------------------

  private log(line: string): void {
    this.options.log?.(line);
  }

  /** Asks the host to shut down, kills it if it does not within `timeoutMs`, and fails whatever is pending. */
  async dispose(timeoutMs = 3000): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.clearIdleTimer();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child) {
      this.update({ host: "stopped", model: "none", generating: false });
      return;
    }
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    if (child.connected) {
      // The host answers, frees the model and exits when the channel closes.
      const id = this.nextId++;
      const answered = new Promise<void>((resolve) => {
        this.pending.set(id, { method: "shutdown", resolve: () => resolve(), reject: () => resolve() });
      });
      child.send({ type: "request", id, method: "shutdown", params: {} }, (error) => error && this.settle(id, error));
      await Promise.race([answered, exited]);
      if (child.connected) child.disconnect();
    }
    await exited;
    clearTimeout(killer);
    for (const id of [...this.pending.keys()]) this.settle(id, new EngineError("disposed", "the engine client has been disposed"));
  }
}
