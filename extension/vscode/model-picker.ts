// Choosing a model: a file picker for a .gguf. The completion model is checked by loading it in the engine host
// (which also tells whether it can infill) before it becomes the modelPath setting; the explanation model is loaded
// only when an explanation runs (perhaps in place of the completion model), so here its header is checked.
import { open } from "node:fs/promises";
import path from "node:path";
import * as vscode from "vscode";

import { looksChatTuned } from "../core/model-type";
import { noInfillMessage } from "../core/protocol";
import type { EngineClient } from "../host/engine-client";
import { loadParams, readSettings, updateSetting } from "./settings";

/**
 * Asks for a .gguf file and saves it as pyramidCoder.modelPath if it can complete code, or as explain.modelPath
 * (for `purpose` "explain") if it is a GGUF file.
 */
export async function pickModel(client: EngineClient, purpose: "complete" | "explain" = "complete"): Promise<string | undefined> {
  const current = purpose === "explain" ? readSettings().explain.modelPath || readSettings().modelPath : readSettings().modelPath;
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: true,
    canSelectFolders: false,
    canSelectMany: false,
    defaultUri: current ? vscode.Uri.file(path.dirname(current)) : undefined,
    filters: { "GGUF models": ["gguf"], "All files": ["*"] },
    openLabel: "Use this model",
    title: purpose === "explain" ? "Pyramid Coder: choose a CodeLLaMA Instruct GGUF model for explanations" : "Pyramid Coder: choose a CodeLLaMA GGUF model",
  });
  const file = picked?.[0]?.fsPath;
  if (!file) return undefined;
  if (purpose === "explain") return saveExplainModel(file);
  const settings = readSettings();
  try {
    // load-progress.ts shows the load's progress notification, as for every load.
    const summary = await client.ensureModel(loadParams(settings, file));
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

/** GGUF files begin with these four bytes. */
const GGUF_MAGIC = "GGUF";

async function saveExplainModel(file: string): Promise<string | undefined> {
  try {
    const handle = await open(file, "r");
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0).finally(() => handle.close());
    if (bytesRead < 4 || buffer.toString("latin1") !== GGUF_MAGIC) throw new Error("it is not a GGUF file");
  } catch (error) {
    void vscode.window.showErrorMessage(`Pyramid Coder cannot use ${file}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  await updateSetting("explain.modelPath", file);
  const warning = looksChatTuned([path.basename(file)]) ? "" : " Its name does not say Instruct: a base model explains poorly.";
  void vscode.window.showInformationMessage(`Pyramid Coder explains code with ${path.basename(file)}.${warning}`);
  return file;
}
