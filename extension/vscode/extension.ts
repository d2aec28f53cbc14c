// Entry point of the VS Code extension (dist/extension.js). The engine runs in a child process (dist/engine-host.js)
// that this starts on the first completion; nothing here loads the native addon, so a crash in native code never
// takes the extension host down with it.
import * as vscode from "vscode";

import { EngineError } from "../core/protocol";
import { EngineClient, type EngineState } from "../host/engine-client";
import { COMMANDS, registerCommands } from "./commands";
import { Explainer } from "./explain";
import { showLoadProgress } from "./load-progress";
import { downloadModel } from "./model-download";
import { pickModel } from "./model-picker";
import { CompletionProvider } from "./provider";
import { readSettings, SECTION, updateSetting } from "./settings";
import { StatusBar } from "./status-bar";
import { StatusPanel, STATUS_VIEW_ID } from "./status-panel";

let client: EngineClient | undefined;

/** What activate returns: a read-only view for end-to-end tests and other extensions. */
export interface PyramidCoderApi {
  engineState(): EngineState;
}

const CHOOSE_MODEL = "Choose model file…";
const DOWNLOAD_MODEL = "Download a model…";

export function activate(context: vscode.ExtensionContext): PyramidCoderApi {
  const output = vscode.window.createOutputChannel("Pyramid Coder");
  const log = (line: string) => output.appendLine(`[${new Date().toISOString()}] ${line}`);
  const engine = new EngineClient(context.asAbsolutePath("dist/engine-host.js"), {
    // VS Code's executable is Electron; with ELECTRON_RUN_AS_NODE it runs as the Node it embeds (code-server's is Node).
    spawn: { execPath: process.execPath, env: { ...process.env, ELECTRON_RUN_AS_NODE: "1" } },
    idleUnloadMs: () => readSettings().idleUnloadMinutes * 60_000,
    log,
  });
  client = engine;

  const download = (kind?: "base" | "instruct") => downloadModel(context, engine, kind);
  /** The answer to a model question: pick a file, or download a preset. */
  const getModel = (choice: string | undefined) => {
    if (choice === CHOOSE_MODEL) return pickModel(engine);
    if (choice === DOWNLOAD_MODEL) return download();
    return undefined;
  };

  // Messages the user must act on are shown once each, not at every keystroke.
  let askedForModel = false;
  const askForModel = () => {
    if (askedForModel) return;
    askedForModel = true;
    void vscode.window
      .showInformationMessage("Pyramid Coder needs a CodeLLaMA GGUF model (7B or 13B, base or Instruct) to complete code.", CHOOSE_MODEL, DOWNLOAD_MODEL)
      .then(getModel);
  };
  const shownErrors = new Set<string>();
  const provider = new CompletionProvider(engine, {
    noModel: askForModel,
    failed(error) {
      log(`completion failed: ${error.message}`);
      if (shownErrors.has(error.message)) return;
      shownErrors.add(error.message);
      const actions = error instanceof EngineError && (error.code === "no-infill" || error.code === "model-not-found") ? [CHOOSE_MODEL, DOWNLOAD_MODEL] : [];
      void vscode.window.showErrorMessage(`Pyramid Coder: ${error.message}`, ...actions).then(getModel);
    },
    log,
  });
  const statusBar = new StatusBar(engine);
  const statusPanel = new StatusPanel(context.extensionUri, engine, log);
  const explainer = new Explainer(context.extensionUri, engine, {
    noModel: () => {
      void vscode.window
        .showInformationMessage("Pyramid Coder needs a CodeLLaMA Instruct GGUF model to explain code.", CHOOSE_MODEL, DOWNLOAD_MODEL)
        .then(getModel);
    },
    chooseInstructModel: () => pickModel(engine, "explain"),
    downloadInstructModel: async () => void (await download("instruct")),
    log,
  });

  context.subscriptions.push(
    output,
    statusBar,
    statusPanel,
    explainer,
    showLoadProgress(engine),
    vscode.languages.registerInlineCompletionItemProvider({ pattern: "**" }, provider),
    vscode.window.registerWebviewViewProvider(STATUS_VIEW_ID, statusPanel),
    ...registerCommands({
      // Off also unloads the model, so the memory it held (weights and KV cache) goes back at once.
      toggle: async () => {
        const enabled = !readSettings().completion.enabled;
        await updateSetting("completion.enabled", enabled);
        if (!enabled) await engine.unload().catch((error) => log(`unload failed: ${(error as Error).message}`));
        vscode.window.setStatusBarMessage(`Pyramid Coder: completions ${enabled ? "on" : "off"}`, 3000);
      },
      selectModel: () => pickModel(engine),
      selectExplainModel: () => pickModel(engine, "explain"),
      downloadModel: () => download(),
      explainSelection: () => explainer.explainSelection(),
      showStatus: () => StatusPanel.reveal(),
      showLog: () => output.show(true),
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      // Model, context and KV settings reach the engine with the next request (it reloads when they differ).
      if (event.affectsConfiguration(`${SECTION}.modelPath`)) {
        provider.clearCache();
        shownErrors.clear();
      }
      if (!readSettings().completion.enabled) void engine.unload().catch(() => {});
      statusBar.refresh();
      statusPanel.settingsChanged();
    }),
    { dispose: () => void engine.dispose() },
  );
  log(`activated; engine host ${context.asAbsolutePath("dist/engine-host.js")}; commands ${Object.values(COMMANDS).join(", ")}`);
  return { engineState: () => engine.state };
}

export async function deactivate(): Promise<void> {
  await client?.dispose();
  client = undefined;
}
