// The `pyramidCoder.*` settings (declared in package.json's contributes.configuration), read afresh for every request
// so that a change applies to the next completion without a reload. Values are clamped to the declared ranges here
// too: a settings.json edited by hand is not checked by VS Code.
import * as vscode from "vscode";

import type { LoadModelParams } from "../core/protocol";
import type { InfillOrder, KvPolicyName, KvPolicyOptions } from "../host/native";

export const SECTION = "pyramidCoder";

export interface CompletionSettings {
  enabled: boolean;
  /** Language id -> enabled; "*" is the default for languages not listed. */
  languages: Record<string, boolean>;
  debounceMs: number;
  maxTokens: number;
  maxLines: number;
  contextLinesBefore: number;
  contextLinesAfter: number;
  fimFormat: InfillOrder;
  temperature: number;
}

export interface Settings {
  modelPath: string;
  contextSize: number;
  threads: number;
  gpuLayers: number;
  idleUnloadMinutes: number;
  kv: KvPolicyOptions;
  completion: CompletionSettings;
  /** modelPath: an Instruct model for explanations ("" : the completion model). */
  explain: { maxTokens: number; modelPath: string };
}

const KV_POLICIES: readonly KvPolicyName[] = ["pyramid", "full", "streaming", "h2o"];

function clamp(value: unknown, fallback: number, min: number, max: number, whole = false): number {
  const number = typeof value === "number" && Number.isFinite(value) ? value : fallback;
  const clamped = Math.min(max, Math.max(min, number));
  return whole ? Math.round(clamped) : clamped;
}

/** The settings for `scope` (a document, for language-specific values), with defaults for anything unset or invalid. */
export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  const policy = config.get<string>("kv.policy", "pyramid");
  const languages = config.get<unknown>("completion.languages");
  const format = config.get<string>("completion.fimFormat", "spm");
  return {
    modelPath: expandHome(config.get<string>("modelPath", "").trim()),
    contextSize: clamp(config.get("contextSize"), 4096, 0, 131072, true),
    threads: clamp(config.get("threads"), 0, 0, 1024, true),
    gpuLayers: clamp(config.get("gpuLayers"), 0, -1, 1000, true),
    idleUnloadMinutes: clamp(config.get("idleUnloadMinutes"), 15, 0, 1440),
    kv: {
      policy: KV_POLICIES.includes(policy as KvPolicyName) ? (policy as KvPolicyName) : "pyramid",
      targetRatio: clamp(config.get("kv.targetRatio"), 0, 0, 1),
      recentRatio: clamp(config.get("kv.recentRatio"), 0.2, 0, 1),
      decayRatio: clamp(config.get("kv.decayRatio"), 0.9, 0, 1),
      layerInterval: clamp(config.get("kv.layerInterval"), 1, 1, 64, true),
      minContext: clamp(config.get("kv.minContext"), 64, 0, 1 << 20, true),
      sinkTokens: clamp(config.get("kv.sinkTokens"), 4, 0, 1024, true),
      distanceWeight: clamp(config.get("kv.distanceWeight"), 1.2, 0, 100),
    },
    completion: {
      enabled: config.get<boolean>("completion.enabled", true) !== false,
      languages: typeof languages === "object" && languages !== null && !Array.isArray(languages) ? (languages as Record<string, boolean>) : {},
      debounceMs: clamp(config.get("completion.debounceMs"), 200, 0, 5000, true),
      maxTokens: clamp(config.get("completion.maxTokens"), 128, 1, 2048, true),
      maxLines: clamp(config.get("completion.maxLines"), 12, 1, 200, true),
      contextLinesBefore: clamp(config.get("completion.contextLinesBefore"), 128, 0, 10000, true),
      contextLinesAfter: clamp(config.get("completion.contextLinesAfter"), 32, 0, 10000, true),
      fimFormat: format === "psm" ? "psm" : "spm",
      temperature: clamp(config.get("completion.temperature"), 0, 0, 2),
    },
    explain: {
      maxTokens: clamp(config.get("explain.maxTokens"), 512, 1, 4096, true),
      modelPath: expandHome(config.get<string>("explain.modelPath", "").trim()),
    },
  };
}

function expandHome(file: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  return home && (file === "~" || file.startsWith("~/")) ? home + file.slice(1) : file;
}

/** Whether completions are on for a language: its own entry, else the "*" entry, else on. */
export function languageEnabled(settings: Settings, languageId: string): boolean {
  const languages = settings.completion.languages;
  if (typeof languages[languageId] === "boolean") return languages[languageId];
  if (typeof languages["*"] === "boolean") return languages["*"];
  return true;
}

/** What the engine host loads for these settings; a change in any of it reloads the model before the next request. */
export function loadParams(settings: Settings, modelPath = settings.modelPath): LoadModelParams {
  return {
    path: modelPath,
    contextSize: settings.contextSize,
    threads: settings.threads,
    gpuLayers: settings.gpuLayers,
    // Full keeps every token: its tuning is meaningless, and leaving it out keeps a tuning change from reloading it.
    kv: settings.kv.policy === "full" ? { policy: "full" } : settings.kv,
  };
}

/** Sets a setting where it is currently defined (folder, workspace or user), so the change takes effect. */
export async function updateSetting(key: string, value: unknown): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const where = config.inspect(key);
  const target =
    where?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : where?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await config.update(key, value, target);
}
