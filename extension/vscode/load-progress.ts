// A progress notification while the engine loads a model (on first use, or after a settings change or an idle
// unload): on a laptop a 4 GB file can take seconds, and ghost text that does not appear must say why.
import * as vscode from "vscode";

import type { EngineClient, EngineState } from "../host/engine-client";

export function showLoadProgress(engine: EngineClient): vscode.Disposable {
  let finishLoad: (() => void) | undefined;
  const subscription = engine.onStateChange((state: EngineState) => {
    if (state.model === "loading" && !finishLoad) {
      const done = new Promise<void>((resolve) => (finishLoad = resolve));
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Pyramid Coder: loading the model…" },
        () => done,
      );
    } else if (state.model !== "loading" && finishLoad) {
      finishLoad();
      finishLoad = undefined;
    }
  });
  return { dispose: () => (finishLoad?.(), subscription.dispose()) };
}
