// "Download Model": the presets with their size and the memory they need at the configured context, then a download
// into the extension's global storage with a cancellable progress notification (resumable, checksum-verified:
// extension/core/download.ts), after which the model becomes the completion model, or the explanation model when it
// is an Instruct model and a completion model is set already. Nothing is fetched unless the user picks a preset.
import { existsSync } from "node:fs";
import path from "node:path";
import * as vscode from "vscode";

import { DownloadError, downloadFile } from "../core/download";
import { formatBytes } from "../core/format";
import { parsePresets, presetChoice, presetFileName, type ModelPreset, type PresetKind } from "../core/model-presets";
import type { EngineClient } from "../host/engine-client";
import { readSettings, SECTION, updateSetting } from "./settings";

/** A CodeLLaMA model's own context length, for the estimate when contextSize is 0 ("the model's"). */
const CODELLAMA_CONTEXT = 16384;

/** Destinations being downloaded now: a second download of one would write the same partial file. */
const inProgress = new Set<string>();

export async function downloadModel(context: vscode.ExtensionContext, client: EngineClient, kind?: PresetKind): Promise<string | undefined> {
  const settings = readSettings();
  const { presets, problems } = parsePresets(vscode.workspace.getConfiguration(SECTION).get("download.presets"));
  if (problems.length > 0) void vscode.window.showWarningMessage(`Pyramid Coder: some download presets are ignored: ${problems.join("; ")}`);
  const offered = presets.filter((preset) => kind === undefined || preset.kind === kind);
  if (offered.length === 0) {
    void vscode.window.showErrorMessage(`Pyramid Coder: no ${kind ?? ""} model presets to download (setting pyramidCoder.download.presets).`);
    return undefined;
  }
  const contextSize = settings.contextSize || CODELLAMA_CONTEXT;
  // The engine's own plan (in the engine host; no model is loaded for it), so the figure is what the engine would keep.
  const estimates = await Promise.all(
    offered.map((preset) =>
      client.planKv({ tokens: contextSize, layers: preset.layers, kvDim: preset.kvDim, kv: settings.kv }).catch(() => undefined),
    ),
  );
  const items = offered.map((preset, index) => ({ ...presetChoice(preset, contextSize, estimates[index]), preset }));
  const picked = await vscode.window.showQuickPick(items, {
    title: "Pyramid Coder: download a model",
    placeHolder: "The file goes into the extension's storage; nothing is downloaded until you choose",
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!picked) return undefined;
  const preset = picked.preset;
  const destination = path.join(context.globalStorageUri.fsPath, "models", presetFileName(preset));
  if (inProgress.has(destination)) {
    void vscode.window.showInformationMessage(`Pyramid Coder: ${preset.label} is being downloaded already.`);
    return undefined;
  }
  if (!existsSync(destination)) {
    inProgress.add(destination);
    const fetched = await fetchPreset(preset, destination, context).finally(() => inProgress.delete(destination));
    if (!fetched) return undefined;
  }

  const forExplanations = preset.kind === "instruct" && settings.modelPath !== "" && settings.modelPath !== destination;
  await updateSetting(forExplanations ? "explain.modelPath" : "modelPath", destination);
  void vscode.window.showInformationMessage(
    `Pyramid Coder: ${preset.label} is ready and set as the model for ${forExplanations ? "Explain Selection" : "completions"}.`,
  );
  return destination;
}

/** Downloads with a cancellable progress notification; true when the verified file is at `destination`. */
async function fetchPreset(preset: ModelPreset, destination: string, context: vscode.ExtensionContext): Promise<boolean> {
  const version = String(context.extension.packageJSON.version ?? "");
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Downloading ${preset.label}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        const subscription = token.onCancellationRequested(() => abort.abort());
        let shownPercent = 0;
        try {
          await downloadFile({
            url: preset.url,
            destination,
            sha256: preset.sha256,
            signal: abort.signal,
            headers: { "User-Agent": `pyramid-coder-vscode/${version}` },
            onProgress: ({ received, total, resumedFrom, bytesPerSecond }) => {
              const percent = total ? (100 * received) / total : 0;
              const resumed = resumedFrom > 0 ? ` (resumed at ${formatBytes(resumedFrom)})` : "";
              progress.report({
                message: `${formatBytes(received)}${total ? ` of ${formatBytes(total)}` : ""} · ${formatBytes(bytesPerSecond)}/s${resumed}`,
                increment: percent - shownPercent,
              });
              shownPercent = percent;
            },
          });
        } finally {
          subscription.dispose();
        }
      },
    );
    return true;
  } catch (error) {
    if (error instanceof DownloadError && error.code === "cancelled") {
      void vscode.window.showInformationMessage(`Pyramid Coder: ${error.message}`);
      return false;
    }
    const retry = "Retry";
    const choice = await vscode.window.showErrorMessage(`Pyramid Coder: ${error instanceof Error ? error.message : String(error)}`, retry);
    return choice === retry ? fetchPreset(preset, destination, context) : false;
  }
}
