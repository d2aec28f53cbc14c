// One status bar item: off / no model / loading / idle / generating / error or restarting, with the KV cache's size
// after the last completion (what PyramidInfer saves shows there: bytes in use against the full cache's).
import * as vscode from "vscode";

import { formatBytes } from "../core/format";
import { COMMANDS } from "./commands";
import type { EngineClient, EngineState } from "../host/engine-client";
import { readSettings } from "./settings";

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("pyramidCoder.status", vscode.StatusBarAlignment.Right, 100);
  private readonly subscription: { dispose(): void };

  constructor(private readonly client: EngineClient) {
    this.item.name = "Pyramid Coder";
    this.subscription = client.onStateChange(() => this.refresh());
    this.refresh();
    this.item.show();
  }

  /** Redraws from the client's state and the settings (call after a settings change too). */
  refresh(): void {
    const settings = readSettings();
    const state = this.client.state;
    const { text, tooltip, command, alert } = this.describe(state, settings.completion.enabled, settings.modelPath);
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.command = command;
    this.item.backgroundColor = alert ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  private describe(
    state: EngineState,
    enabled: boolean,
    modelPath: string,
  ): { text: string; tooltip: string; command: string; alert: boolean } {
    const kv = state.kv ? ` · KV ${formatBytes(state.kv.bytes)}` : "";
    const kvDetail = state.kv
      ? `\nKV cache (${state.kv.policy}): ${formatBytes(state.kv.bytes)} of ${formatBytes(state.kv.fullBytes)} for a full cache, ${state.kv.tokens} tokens`
      : "";
    const model = state.summary ? `\nModel: ${state.summary.name} (${state.summary.path})` : modelPath ? `\nModel: ${modelPath}` : "";
    const restarts = state.restarts > 0 ? `\nThe engine host was restarted ${state.restarts} time(s) after stopping.` : "";
    if (!enabled) {
      return { text: "$(circle-slash) Pyramid", tooltip: "Pyramid Coder: completions are off (click to turn them on)", command: COMMANDS.toggle, alert: false };
    }
    if (state.host === "restarting") {
      return { text: "$(debug-restart) Pyramid: restarting", tooltip: `Pyramid Coder: ${state.error ?? "the engine host is restarting"}${restarts}`, command: COMMANDS.showLog, alert: true };
    }
    if (state.host === "failed" || state.model === "error") {
      return { text: "$(error) Pyramid: error", tooltip: `Pyramid Coder: ${state.error ?? "error"}${restarts}\n(click for the log)`, command: COMMANDS.showLog, alert: true };
    }
    if (!modelPath) {
      return { text: "$(circle-outline) Pyramid: no model", tooltip: "Pyramid Coder: no model configured (click to choose a CodeLLaMA .gguf file)", command: COMMANDS.selectModel, alert: false };
    }
    const panel = "\n(click for the status panel)";
    if (state.model === "loading") {
      return { text: "$(loading~spin) Pyramid: loading", tooltip: `Pyramid Coder: loading the model${model}${panel}`, command: COMMANDS.showStatus, alert: false };
    }
    if (state.generating) {
      return { text: `$(sync~spin) Pyramid${kv}`, tooltip: `Pyramid Coder: generating${model}${kvDetail}${restarts}${panel}`, command: COMMANDS.showStatus, alert: false };
    }
    if (state.model !== "loaded") {
      return { text: "$(circle-outline) Pyramid: no model", tooltip: `Pyramid Coder: no model loaded; the next completion loads it${model}${restarts}${panel}`, command: COMMANDS.showStatus, alert: false };
    }
    return { text: `$(check) Pyramid${kv}`, tooltip: `Pyramid Coder: idle${model}${kvDetail}${restarts}${panel}`, command: COMMANDS.showStatus, alert: false };
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
