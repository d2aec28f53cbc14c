// The status panel (a webview view in the panel area): what the engine holds and what the KV cache costs, live while
// generating, and the retention controls, which write the pyramidCoder.kv.* settings and preview before anything runs
// what the settings would keep for the active file. The view model is extension/core/status-view.ts; this adapter
// gathers its inputs (engine state, settings, the engine's plan for the active file) and carries messages.
import path from "node:path";
import * as vscode from "vscode";

import { retentionPreviewOptions, retentionSettingWrite, RetentionInputError } from "../core/retention";
import { statusView, type StatusInput } from "../core/status-view";
import type { StatusPanelRequest, StatusPanelUpdate } from "../core/webview-messages";
import type { EngineClient } from "../host/engine-client";
import type { KvPlan, KvPolicyOptions } from "../host/native";
import { COMMANDS } from "./commands";
import { loadParams, readSettings, updateSetting, type Settings } from "./settings";
import { webviewHtml, webviewOptions } from "./webview";

export const STATUS_VIEW_ID = "pyramidCoder.status";

/** Commands the panel's buttons run. */
const PANEL_COMMANDS: readonly string[] = [COMMANDS.toggle, COMMANDS.selectModel, COMMANDS.downloadModel, COMMANDS.explainSelection, COMMANDS.showLog];

const BODY = `
<main id="status" aria-live="off">
  <section aria-labelledby="engine-heading">
    <h2 id="engine-heading">Engine</h2>
    <p id="state" class="state" role="status"></p>
    <p id="live" class="live" role="status" aria-live="polite"></p>
    <dl id="model" class="facts"></dl>
    <div class="buttons">
      <button type="button" data-command="${COMMANDS.toggle}" id="toggle">Toggle completions</button>
      <button type="button" data-command="${COMMANDS.selectModel}">Choose model…</button>
      <button type="button" data-command="${COMMANDS.downloadModel}">Download model…</button>
      <button type="button" data-command="${COMMANDS.showLog}">Show log</button>
    </div>
  </section>
  <section aria-labelledby="cache-heading">
    <h2 id="cache-heading">KV cache after the last request</h2>
    <dl id="cache" class="facts"></dl>
    <figure id="cache-chart" class="pyramid"></figure>
    <dl id="last" class="facts"></dl>
  </section>
  <section aria-labelledby="retention-heading">
    <h2 id="retention-heading">Retention</h2>
    <p class="hint">Changes are saved to the <code>pyramidCoder.kv.*</code> settings and apply to the next completion.</p>
    <form id="retention" class="controls"></form>
    <h3 id="preview-heading">Preview</h3>
    <p id="preview-title" class="hint"></p>
    <dl id="preview" class="facts"></dl>
    <figure id="preview-chart" class="pyramid preview"></figure>
  </section>
</main>`;

export class StatusPanel implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  /** Control values moved but not yet saved, previewed until the settings catch up. */
  private previewValues: Record<string, unknown> = {};
  /** The last text editor's document: the preview's file while a webview (this panel, an explanation) has focus. */
  private lastDocument: vscode.TextDocument | undefined = vscode.window.activeTextEditor?.document;
  /** Token counts of documents by uri and version: counting a long file is not free. */
  private tokenCount: { key: string; tokens: number } | undefined;
  /** The last preview's plan, by what it was planned from. */
  private plan: { key: string; plan: KvPlan } | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastPost = 0;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly client: EngineClient,
    private readonly log: (line: string) => void,
  ) {
    const engineSubscription = client.onStateChange(() => this.scheduleRefresh());
    this.subscriptions.push(
      { dispose: () => engineSubscription.dispose() },
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (!editor) return;
        this.lastDocument = editor.document;
        this.scheduleRefresh();
      }),
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.document === this.lastDocument) this.scheduleRefresh(500);
      }),
      vscode.workspace.onDidCloseTextDocument((document) => {
        if (document === this.lastDocument) this.lastDocument = undefined;
      }),
    );
  }

  /** Opens the panel (from the status bar item or the command palette). */
  static async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${STATUS_VIEW_ID}.focus`);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, { title: "Pyramid Coder", script: "status-panel.js", body: BODY });
    view.webview.onDidReceiveMessage((message: StatusPanelRequest) => this.receive(message), undefined, this.subscriptions);
    view.onDidChangeVisibility(
      () => {
        if (view.visible) this.loadForPreview();
        this.scheduleRefresh();
      },
      undefined,
      this.subscriptions,
    );
    this.loadForPreview();
    view.onDidDispose(() => (this.view = undefined), undefined, this.subscriptions);
  }

  /**
   * The preview needs the model's tokenizer and shape: opening the panel loads the model as the next completion would.
   * Only then, not on every redraw, so that an idle unload while the panel stays open is not undone.
   */
  private loadForPreview(): void {
    const settings = readSettings();
    if (this.client.state.model !== "none" || !settings.modelPath || !settings.completion.enabled) return;
    this.client.ensureModel(loadParams(settings)).then(
      () => this.scheduleRefresh(),
      (error: Error) => this.log(`status panel: cannot load the model for the preview: ${error.message}`),
    );
  }

  /** Settings changed: saved values replace the previewed ones. */
  settingsChanged(): void {
    this.previewValues = {};
    this.post({ type: "saved" });
    this.scheduleRefresh();
  }

  /** What the panel's script asks for; anything else is ignored (a webview's messages are untrusted input). */
  private async receive(message: StatusPanelRequest): Promise<void> {
    if (typeof message !== "object" || message === null) return;
    try {
      switch (message.type) {
        case "ready":
          this.scheduleRefresh();
          return;
        case "preview":
          // Checked now so that a bad value is refused here, with a message, not inside the engine.
          retentionPreviewOptions({}, message.values ?? {});
          this.previewValues = { ...message.values };
          this.scheduleRefresh();
          return;
        case "set": {
          const { setting, value } = retentionSettingWrite(message.key, message.value);
          this.previewValues = { ...this.previewValues, [message.key]: value };
          await updateSetting(setting, value);
          return;
        }
        case "command":
          if (PANEL_COMMANDS.includes(message.command)) await vscode.commands.executeCommand(message.command);
          return;
      }
    } catch (error) {
      if (error instanceof RetentionInputError) {
        this.post({ type: "error", message: error.message });
        return;
      }
      this.log(`status panel: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Redraws soon; bursts of changes (tokens streaming in, typing) make one redraw per `delayMs`. */
  private scheduleRefresh(delayMs = 100): void {
    if (!this.view?.visible || this.refreshTimer) return;
    const wait = Math.max(0, Math.min(delayMs, this.lastPost + delayMs - Date.now()));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.lastPost = Date.now();
      void this.refresh();
    }, wait);
  }

  private async refresh(): Promise<void> {
    const view = this.view;
    if (!view?.visible) return;
    const settings = readSettings();
    const kv = safePreviewOptions(settings.kv, this.previewValues);
    const input: StatusInput = {
      engine: this.client.state,
      enabled: settings.completion.enabled,
      modelPath: settings.modelPath,
      kv,
      preview: await this.preview(settings, kv),
      now: Date.now(),
    };
    this.post({ type: "view", view: statusView(input) });
  }

  private post(message: StatusPanelUpdate): void {
    void this.view?.webview.postMessage(message);
  }

  /** The plan of `kv` for the active file's tokens (as many as a completion prompt holds), from the loaded model. */
  private async preview(settings: Settings, kv: KvPolicyOptions): Promise<StatusInput["preview"]> {
    const document = vscode.window.activeTextEditor?.document ?? this.lastDocument;
    if (!document) return { unavailable: "Open a file to preview what these settings keep for it." };
    const state = this.client.state;
    if (state.model !== "loaded" || !state.summary) {
      if (!settings.modelPath) return { unavailable: "Choose a model to preview what these settings keep." };
      if (!settings.completion.enabled) return { unavailable: "Completions are off; turn them on to preview with the model." };
      if (state.model === "loading") return { unavailable: "Loading the model for the preview…" };
      if (state.model === "error") return { unavailable: `The model did not load: ${state.error ?? ""}` };
      return { unavailable: "The model is not loaded: the next completion (or opening this panel again) loads it for the preview." };
    }
    try {
      const key = `${document.uri.toString()}@${document.version}@${state.summary.path}`;
      if (this.tokenCount?.key !== key) this.tokenCount = { key, tokens: await this.client.countTokens(document.getText()) };
      const fileTokens = this.tokenCount.tokens;
      const promptTokens = Math.max(1, Math.min(fileTokens, state.summary.contextSize - settings.completion.maxTokens));
      // Redraws come ten times a second while tokens stream; the plan changes only with its inputs.
      const planKey = JSON.stringify([state.summary.path, promptTokens, kv]);
      if (this.plan?.key !== planKey) this.plan = { key: planKey, plan: await this.client.planKv({ tokens: promptTokens, kv }) };
      return { fileName: path.basename(document.fileName), fileTokens, plan: this.plan.plan };
    } catch (error) {
      return { unavailable: `No preview: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  dispose(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const subscription of this.subscriptions.splice(0)) subscription.dispose();
  }
}

/** The previewed values that pass the checks (a stale or bad one is dropped rather than breaking the panel). */
function safePreviewOptions(current: KvPolicyOptions, values: Record<string, unknown>): KvPolicyOptions {
  try {
    return retentionPreviewOptions(current, values);
  } catch {
    return current;
  }
}
