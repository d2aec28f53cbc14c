// The status panel's view model: everything it shows, as text, computed from the engine client's state, the settings
// and the engine's KV plan. The webview only lays it out, so what the user reads is decided (and tested) here.
import type { ModelSummary } from "./protocol";
import type { EngineState } from "../host/engine-client";
import type { KvLayerStats, KvPlan, KvPolicyOptions } from "../host/native";
import { formatBytes, formatCount, formatDuration, formatRate, formatShare, formatTokens } from "./format";
import { RETENTION_CONTROLS, type RetentionKey } from "./retention";

export type Tone = "off" | "idle" | "busy" | "error";

export interface LayerBar {
  layer: number;
  tokens: number;
  /** Of the widest layer (the chart's scale), 0..1. */
  fraction: number;
  /** For the bar's tooltip and screen readers. */
  label: string;
}

export interface ModelView {
  name: string;
  path: string;
  /** "Q4_K_M · 4.1 GiB file · 3.8 GiB weights" */
  detail: string;
  /** "6 layers · context 4,096 tokens · base model" */
  shape: string;
}

export interface CacheView {
  policy: string;
  /** "1.2 MiB of 3.4 MiB" */
  bytes: string;
  /** "35% of the full cache (65% saved)" */
  share: string;
  tokens: string;
  layers: LayerBar[];
  /** A sentence describing the chart, for screen readers. */
  summary: string;
}

interface ControlCommon {
  key: RetentionKey;
  label: string;
  help: string;
  /** The current policy does not use this setting (shown, but disabled). */
  inactive: boolean;
}

export type ControlView =
  | (ControlCommon & { kind: "number"; value: number; min: number; max: number; step: number })
  | (ControlCommon & { kind: "select"; value: string; options: readonly string[] });

export interface StatusView {
  state: { label: string; tone: Tone; detail?: string };
  model?: ModelView;
  explainModel?: ModelView;
  /** The completion session's cache after the last request. */
  cache?: CacheView;
  /** The last completion that produced text. */
  lastCompletion?: { firstToken: string; speed: string; tokens: string; prompt: string };
  /** A generation running now. */
  live?: string;
  retention: ControlView[];
  preview: (CacheView & { title: string }) | { unavailable: string };
}

export interface StatusInput {
  engine: EngineState;
  enabled: boolean;
  /** pyramidCoder.modelPath, resolved ("" when none). */
  modelPath: string;
  kv: KvPolicyOptions;
  /** The KV the settings would keep for the active file, or why there is no preview. */
  preview: { fileName: string; fileTokens: number; plan: KvPlan } | { unavailable: string };
  now: number;
}

function layerBars(layers: readonly KvLayerStats[]): LayerBar[] {
  const widest = Math.max(1, ...layers.map((layer) => layer.tokens));
  return layers.map((layer, index) => ({
    layer: index,
    tokens: layer.tokens,
    fraction: layer.tokens / widest,
    label: `layer ${index}: ${formatTokens(layer.tokens)}, ${formatBytes(layer.bytes)}`,
  }));
}

function cacheView(policy: string, bytes: number, fullBytes: number, tokens: number, layers: readonly KvLayerStats[]): CacheView {
  const share = fullBytes > 0 ? bytes / fullBytes : 1;
  const kept = layers.map((layer) => layer.tokens);
  return {
    policy,
    bytes: `${formatBytes(bytes)} of ${formatBytes(fullBytes)}`,
    share: `${formatShare(share)} of the full cache${share < 1 ? ` (${formatShare(1 - share)} saved)` : ""}`,
    tokens: formatTokens(tokens),
    layers: layerBars(layers),
    summary:
      kept.length === 0
        ? "no layers"
        : `${kept.length} layers keep from ${formatTokens(Math.max(...kept))} down to ${formatCount(Math.min(...kept))} (layer ${kept.lastIndexOf(Math.min(...kept))})`,
  };
}

function modelView(summary: ModelSummary): ModelView {
  return {
    name: summary.name,
    path: summary.path,
    detail: `${summary.fileType} · ${formatBytes(summary.fileSize)} file · ${formatBytes(summary.weightsBytes)} weights`,
    shape: `${summary.layers} layers · context ${formatCount(summary.contextSize)} tokens · ${summary.chatTuned ? "Instruct model" : "base model"}`,
  };
}

function stateView(input: StatusInput): StatusView["state"] {
  const { engine } = input;
  if (!input.enabled) return { label: "Completions off", tone: "off" };
  if (engine.host === "restarting") return { label: "Restarting the engine", tone: "error", detail: engine.error };
  if (engine.host === "failed" || engine.model === "error") return { label: "Error", tone: "error", detail: engine.error };
  if (engine.generating) return { label: engine.live?.kind === "explain" ? "Explaining" : "Generating", tone: "busy" };
  if (!input.modelPath && engine.model !== "loaded") return { label: "No model configured", tone: "off" };
  if (engine.model === "loading") return { label: "Loading the model", tone: "busy" };
  if (engine.model !== "loaded") return { label: "Model not loaded (the next completion loads it)", tone: "idle" };
  return { label: "Idle", tone: "idle" };
}

function liveView(engine: EngineState, now: number): string | undefined {
  const live = engine.live;
  if (!engine.generating || !live) return undefined;
  const what = live.kind === "explain" ? "Explaining" : "Completing";
  if (live.firstTokenAt === undefined) return `${what}: reading the prompt (${formatDuration(now - live.startedAt)})`;
  // Tokens after the first, over the time since it: the decode speed, which the prompt's reading does not dilute.
  const rate = formatRate(live.tokens - 1, now - live.firstTokenAt);
  return `${what}: ${formatTokens(live.tokens)}, ${rate}, first after ${formatDuration(live.firstTokenAt - live.startedAt)}`;
}

function retentionView(kv: KvPolicyOptions): ControlView[] {
  const policy = kv.policy ?? "pyramid";
  return RETENTION_CONTROLS.map((control) => {
    const value = (kv as Record<string, unknown>)[control.key];
    const inactive = !control.policies.includes(policy) || (control.key === "decayRatio" && (kv.targetRatio ?? 0) > 0);
    return control.kind === "select"
      ? { key: control.key, kind: "select", label: control.label, help: control.help, value: policy, options: control.options, inactive }
      : {
          key: control.key,
          kind: "number",
          label: control.label,
          help: control.help,
          value: typeof value === "number" ? value : control.min,
          min: control.min,
          max: control.max,
          step: control.step,
          inactive,
        };
  });
}

export function statusView(input: StatusInput): StatusView {
  const { engine } = input;
  const view: StatusView = {
    state: stateView(input),
    retention: retentionView(input.kv),
    preview: { unavailable: "" },
  };
  if (engine.summary) view.model = modelView(engine.summary);
  if (engine.explainModel) view.explainModel = modelView(engine.explainModel);
  if (engine.kv) view.cache = cacheView(engine.kv.policy, engine.kv.bytes, engine.kv.fullBytes, engine.kv.tokens, engine.kv.perLayer);
  const last = engine.lastCompletion;
  if (last) {
    view.lastCompletion = {
      firstToken: formatDuration(last.firstTokenMs),
      speed: formatRate(last.genTokens, last.genMs),
      tokens: formatTokens(last.genTokens),
      prompt: `${formatTokens(last.promptTokens)} (${formatCount(last.reusedTokens)} reused) in ${formatDuration(last.promptMs)}`,
    };
  }
  view.live = liveView(engine, input.now);
  const preview = input.preview;
  if ("unavailable" in preview) {
    view.preview = preview;
  } else {
    const { plan } = preview;
    const capped = plan.tokens < preview.fileTokens ? `; a prompt holds ${formatCount(plan.tokens)} of them` : "";
    view.preview = {
      title: `${preview.fileName}: ${formatTokens(preview.fileTokens)}${capped}`,
      ...cacheView(plan.policy, plan.bytes, plan.fullBytes, plan.tokens, plan.perLayer),
    };
    if (!plan.targetReached) view.preview.share += "; the target ratio is out of reach for this prompt";
  }
  return view;
}
