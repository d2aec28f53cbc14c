// The retention controls of the status panel: which `pyramidCoder.kv.*` setting each writes, its range (the same as
// package.json declares), which policies use it, and the check that turns what a webview sends into a setting value.
// A webview is a web page: what it posts is checked here like any other input before it reaches the settings.
import type { KvPolicyName, KvPolicyOptions } from "../host/native";

export const KV_POLICY_NAMES: readonly KvPolicyName[] = ["pyramid", "full", "streaming", "h2o"];

export type RetentionKey = "policy" | "targetRatio" | "recentRatio" | "decayRatio" | "sinkTokens" | "minContext" | "layerInterval";

interface NumberControl {
  key: Exclude<RetentionKey, "policy">;
  kind: "number";
  label: string;
  help: string;
  min: number;
  max: number;
  /** Step of the panel's control; whole-number settings have step 1. */
  step: number;
  whole: boolean;
  /** Policies whose selection the setting changes. */
  policies: readonly KvPolicyName[];
}

interface PolicyControl {
  key: "policy";
  kind: "select";
  label: string;
  help: string;
  options: readonly KvPolicyName[];
  policies: readonly KvPolicyName[];
}

export type RetentionControl = NumberControl | PolicyControl;

const COMPRESSING: readonly KvPolicyName[] = ["pyramid", "streaming", "h2o"];

export const RETENTION_CONTROLS: readonly RetentionControl[] = [
  {
    key: "policy",
    kind: "select",
    label: "Policy",
    help: "pyramid: deeper layers keep fewer tokens; full: no compression; streaming: sinks and a recent window; h2o: heavy hitters and a recent window",
    options: KV_POLICY_NAMES,
    policies: KV_POLICY_NAMES,
  },
  {
    key: "targetRatio",
    kind: "number",
    label: "Target ratio",
    help: "Share of the full cache to keep; 0 uses the decay ratio (pyramid) or half (streaming, h2o)",
    min: 0,
    max: 1,
    step: 0.05,
    whole: false,
    policies: COMPRESSING,
  },
  {
    key: "recentRatio",
    kind: "number",
    label: "Recent ratio",
    help: "Share of the prompt's last tokens always kept; their attention picks the rest",
    min: 0,
    max: 1,
    step: 0.05,
    whole: false,
    policies: COMPRESSING,
  },
  {
    key: "decayRatio",
    kind: "number",
    label: "Decay ratio",
    help: "Share of the context the last layer keeps (cosine from 1 at the first layer); used when the target ratio is 0",
    min: 0,
    max: 1,
    step: 0.05,
    whole: false,
    policies: ["pyramid"],
  },
  {
    key: "sinkTokens",
    kind: "number",
    label: "Sink tokens",
    help: "The prompt's first tokens, always kept",
    min: 0,
    max: 1024,
    step: 1,
    whole: true,
    policies: ["pyramid", "streaming"],
  },
  {
    key: "minContext",
    kind: "number",
    label: "Minimum context",
    help: "A layer that would keep this many context tokens or fewer keeps them all",
    min: 0,
    max: 1 << 20,
    step: 1,
    whole: true,
    policies: COMPRESSING,
  },
  {
    key: "layerInterval",
    kind: "number",
    label: "Layer interval",
    help: "Select tokens after every this many layers",
    min: 1,
    max: 64,
    step: 1,
    whole: true,
    policies: ["pyramid"],
  },
];

export class RetentionInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RetentionInputError";
  }
}

/**
 * The setting (relative to `pyramidCoder.`) and value that a control's new value writes. Numbers may come as text
 * (an input element's value); out of range, not a number, or an unknown control: a RetentionInputError that says so.
 */
export function retentionSettingWrite(key: unknown, raw: unknown): { setting: `kv.${RetentionKey}`; value: string | number } {
  const control = RETENTION_CONTROLS.find((candidate) => candidate.key === key);
  if (!control) throw new RetentionInputError(`unknown retention setting ${JSON.stringify(key)}`);
  if (control.kind === "select") {
    if (!control.options.includes(raw as KvPolicyName)) {
      throw new RetentionInputError(`${control.label} must be one of ${control.options.join(", ")}, not ${JSON.stringify(raw)}`);
    }
    return { setting: `kv.${control.key}`, value: raw as string };
  }
  const value = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!Number.isFinite(value)) throw new RetentionInputError(`${control.label} must be a number, not ${JSON.stringify(raw)}`);
  if (control.whole && !Number.isInteger(value)) throw new RetentionInputError(`${control.label} must be a whole number, not ${value}`);
  if (value < control.min || value > control.max) {
    throw new RetentionInputError(`${control.label} must be between ${control.min} and ${control.max}, not ${value}`);
  }
  return { setting: `kv.${control.key}`, value };
}

/** The KV options a preview of unsaved control values plans with: `current` with the checked values over it. */
export function retentionPreviewOptions(current: KvPolicyOptions, values: Record<string, unknown>): KvPolicyOptions {
  const options: KvPolicyOptions = { ...current };
  for (const [key, raw] of Object.entries(values)) {
    const { setting, value } = retentionSettingWrite(key, raw);
    (options as Record<string, unknown>)[setting.slice("kv.".length)] = value;
  }
  return options;
}
