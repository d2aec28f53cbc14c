// Choosing the model: a file picker for a .gguf, checked by loading it in the engine host (which also tells whether it
// can infill) before it becomes the modelPath setting.
import path from "node:path";
import * as vscode from "vscode";

import { noInfillMessage } from "../core/protocol";
import type { EngineClient } from "../host/engine-client";
import { loadParams, readSettings, updateSetting } from "./settings";

/** Asks for a .gguf file, loads it, and saves it as pyramidCoder.modelPath if it can complete code. */
export async function pickModel(client: EngineClient): Promise<string | undefined> {
  const current = readSettings().modelPath;
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: true,
    canSelectFolders: false,
    canSelectMany: false,
    defaultUri: current ? vscode.Uri.file(path.dirname(current)) : undefined,
    filters: { "GGUF models": ["gguf"], "All files": ["*"] },
    openLabel: "Use this model",
    title: "Pyramid Coder: choose a CodeLLaMA GGUF model",
  });
  const file = picked?.[0]?.fsPath;
  if (!file) return undefined;
  const settings = readSettings();
  try {
    const summary = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Pyramid Coder: loading ${path.basename(file)}` },
      () => client.ensureModel(loadParams(settings, file)),
    );
    if (!summary.hasInfill) {
      await client.unload().catch(() => {});
      void vscode.window.showErrorMessage(noInfillMessage(summary.name, file));
      return undefined;
    }
    await updateSetting("modelPath", file);
    void vscode.window.showInformationMessage(
      `Pyramid Coder completes with ${summary.name} (${summary.layers} layers, context ${summary.contextSize} tokens, KV ${summary.kvPolicy}).`,
    );
    return file;
  } catch (error) {
    void vscode.window.showErrorMessage(`Pyramid Coder cannot use ${file}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
