// Entry point of the VS Code extension (dist/extension.js). The engine runs in a child process (dist/engine-host.js)
// that this starts on the first completion; nothing here loads the native addon, so a crash in native code never
// takes the extension host down with it.
import * as vscode from "vscode";

import { EngineError } from "../core/protocol";
import { EngineClient, type EngineState } from "../host/engine-client";
import { COMMANDS, registerCommands } from "./commands";
import { showLoadProgress } from "./load-progress";
import { pickModel } from "./model-picker";
import { CompletionProvider } from "./provider";
import { readSettings, SECTION } from "./settings";
import { StatusBar } from "./status-bar";

let client: EngineClient | undefined;

/** What activate returns: a read-only view for end-to-end tests and other extensions. */
export interface PyramidCoderApi {
  engineState(): EngineState;
}

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

  // Messages the user must act on are shown once each, not at every keystroke.
  let askedForModel = false;
  const shownErrors = new Set<string>();
  const provider = new CompletionProvider(engine, {
    noModel() {
      if (askedForModel) return;
      askedForModel = true;
      void vscode.window
        .showInformationMessage("Pyramid Coder needs a CodeLLaMA GGUF model (7B or 13B, base or Instruct) to complete code.", "Choose model file…")
        .then((choice) => choice && pickModel(engine));
    },
    failed(error) {
      log(`completion failed: ${error.message}`);
      if (shownErrors.has(error.message)) return;
      shownErrors.add(error.message);
      const actions = error instanceof EngineError && (error.code === "no-infill" || error.code === "model-not-found") ? ["Choose model file…"] : [];
      void vscode.window.showErrorMessage(`Pyramid Coder: ${error.message}`, ...actions).then((choice) => choice && pickModel(engine));
    },
    log,
  });
  const statusBar = new StatusBar(engine);

  context.subscriptions.push(
    output,
    statusBar,
    showLoadProgress(engine),
    vscode.languages.registerInlineCompletionItemProvider({ pattern: "**" }, provider),
    ...registerCommands(engine, output),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      // Model, context and KV settings reach the engine with the next request (it reloads when they differ).
      if (event.affectsConfiguration(`${SECTION}.modelPath`)) {
        provider.clearCache();
        shownErrors.clear();
      }
      if (!readSettings().completion.enabled) void engine.unload().catch(() => {});
      statusBar.refresh();
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
