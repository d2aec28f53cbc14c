// Explain Selection: the selected code and a few lines around it go to a CodeLLaMA-Instruct model with its chat
// template; the answer streams into a webview panel beside the editor as rendered Markdown, and can be stopped there.
// A base model continues code rather than answering, so it is flagged before it runs (with a way to set an Instruct
// model as pyramidCoder.explain.modelPath, which the engine host loads alongside or in place of the completion model).
import path from "node:path";
import * as vscode from "vscode";

import { languageOfId, surroundingContext } from "../core/explain-prompt";
import { formatDuration, formatRate, formatTokens } from "../core/format";
import { renderMarkdown } from "../core/markdown";
import { EngineError, type ExplainParams, type ExplainResult } from "../core/protocol";
import type { ExplainPanelRequest, ExplainPanelState, ExplainPanelUpdate } from "../core/webview-messages";
import type { EngineClient } from "../host/engine-client";
import { loadParams, readSettings } from "./settings";
import { webviewHtml, webviewOptions } from "./webview";

export interface ExplainHooks {
  /** No model is configured at all. */
  noModel(): void;
  /** Asks for an Instruct model file and saves it as explain.modelPath; its path, or undefined if none was chosen. */
  chooseInstructModel(): Promise<string | undefined>;
  /** Offers the Instruct presets for download. */
  downloadInstructModel(): Promise<void>;
  log(line: string): void;
}

const BODY = `
<main class="explain">
  <header>
    <h1 id="title">Explanation</h1>
    <p id="subtitle" class="hint"></p>
  </header>
  <article id="answer" class="markdown" aria-live="polite"></article>
  <footer>
    <p id="status" role="status"></p>
    <button type="button" id="stop">Stop</button>
  </footer>
</main>`;

/** How often a growing answer is re-rendered: often enough to look live, seldom enough to stay cheap. */
const RENDER_INTERVAL_MS = 60;

const CHOOSE = "Choose Instruct model…";
const DOWNLOAD = "Download Instruct model…";
const ANYWAY = "Explain anyway";

export class Explainer implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  /** What the panel shows; kept here so a panel re-created after being hidden shows it again. */
  private state: ExplainPanelState = { title: "Explanation", subtitle: "", html: "", status: "", running: false };
  private running: AbortController | undefined;
  /** Base models the user chose to explain with anyway, so that they are not asked again. */
  private readonly acceptedBaseModels = new Set<string>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly client: EngineClient,
    private readonly hooks: ExplainHooks,
  ) {}

  async explainSelection(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const selection = editor?.selection;
    const code = selection && editor.document.getText(selection);
    if (!editor || !selection || !code || code.trim() === "") {
      void vscode.window.showInformationMessage("Pyramid Coder: select the code to explain first, then run Explain Selection.");
      return;
    }
    const document = editor.document;
    const settings = readSettings(document);
    const modelPath = settings.explain.modelPath || settings.modelPath;
    if (!modelPath) {
      this.hooks.noModel();
      return;
    }
    let load = loadParams(settings, modelPath);
    if (!settings.explain.modelPath) {
      const chosen = await this.checkChatModel(load);
      if (chosen === undefined) return;
      if (chosen !== load.path) load = loadParams(settings, chosen);
    }
    const endLine = selection.end.character === 0 && selection.end.line > selection.start.line ? selection.end.line - 1 : selection.end.line;
    const where = `${path.basename(document.fileName)}:${selection.start.line + 1}-${endLine + 1}`;
    await this.run(where, {
      load,
      code,
      language: languageOfId(document.languageId),
      context: surroundingContext(document.getText(), selection.start.line, endLine),
      maxTokens: settings.explain.maxTokens,
    });
  }

  /**
   * Loads the completion model to see whether it is an Instruct model; if it is not, asks what to do. The model
   * path to explain with, or undefined when the user chose not to go on (or to download one first).
   */
  private async checkChatModel(load: ReturnType<typeof loadParams>): Promise<string | undefined> {
    let summary;
    try {
      summary = await this.client.ensureModel(load);
    } catch (error) {
      void vscode.window.showErrorMessage(`Pyramid Coder cannot explain: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
    if (summary.chatTuned || this.acceptedBaseModels.has(summary.path)) return summary.path;
    const choice = await vscode.window.showWarningMessage(
      `Pyramid Coder: ${summary.name} is a base model. It continues code rather than answering questions, so its explanations ` +
        "will be poor. Explanations need a CodeLLaMA Instruct model, which can be set apart from the completion model.",
      CHOOSE,
      DOWNLOAD,
      ANYWAY,
    );
    if (choice === CHOOSE) return this.hooks.chooseInstructModel();
    if (choice === DOWNLOAD) {
      await this.hooks.downloadInstructModel();
      return undefined;
    }
    if (choice !== ANYWAY) return undefined;
    this.acceptedBaseModels.add(summary.path);
    return summary.path;
  }

  private async run(where: string, params: Omit<ExplainParams, "stream">): Promise<void> {
    this.running?.abort();
    const abort = new AbortController();
    this.running = abort;
    this.showPanel();
    const modelName = path.basename(params.load.path);
    this.show({ title: `Explaining ${where}`, subtitle: modelName, html: "", status: `Reading the code with ${modelName}…`, running: true });
    let text = "";
    let renderTimer: NodeJS.Timeout | undefined;
    const render = () => {
      renderTimer = undefined;
      if (this.running === abort) this.show({ ...this.state, html: renderMarkdown(text) });
    };
    let tokens = 0;
    try {
      const result = await this.client.explain(params, {
        signal: abort.signal,
        onToken: (piece) => {
          text += piece;
          tokens++;
          if (this.running !== abort) return;
          this.state.status = `Explaining with ${modelName}: ${formatTokens(tokens)}…`;
          renderTimer ??= setTimeout(render, RENDER_INTERVAL_MS);
        },
      });
      if (renderTimer) clearTimeout(renderTimer);
      if (this.running !== abort) return;
      this.show({
        title: `Explanation of ${where}`,
        subtitle: `${result.model.name} (${path.basename(result.model.path)})`,
        html: renderMarkdown(result.text),
        status: finishedStatus(result, params.maxTokens),
        running: false,
      });
      this.hooks.log(`explain ${where}: ${finishedStatus(result, params.maxTokens)}`);
    } catch (error) {
      if (renderTimer) clearTimeout(renderTimer);
      if (this.running !== abort) return;
      const cancelled = abort.signal.aborted || (error instanceof EngineError && error.code === "cancelled");
      const message = error instanceof Error ? error.message : String(error);
      this.show({ ...this.state, html: renderMarkdown(text), status: cancelled ? "Stopped." : `Failed: ${message}`, running: false });
      if (!cancelled) {
        this.hooks.log(`explain ${where} failed: ${message}`);
        void vscode.window.showErrorMessage(`Pyramid Coder cannot explain ${where}: ${message}`);
      }
    } finally {
      if (this.running === abort) this.running = undefined;
    }
  }

  private showPanel(): void {
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      "pyramidCoder.explanation",
      "Pyramid Coder: Explanation",
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      webviewOptions(this.extensionUri),
    );
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, { title: "Explanation", script: "explain-panel.js", body: BODY });
    // Messages from the panel's script are untrusted input: anything else is ignored.
    panel.webview.onDidReceiveMessage((message: ExplainPanelRequest) => {
      if (message?.type === "ready") this.post({ type: "state", state: this.state });
      else if (message?.type === "stop") this.running?.abort();
    });
    panel.onDidDispose(() => {
      // Closing the panel stops the explanation it was showing.
      this.running?.abort();
      this.panel = undefined;
    });
    this.panel = panel;
  }

  private show(state: ExplainPanelState): void {
    this.state = state;
    this.post({ type: "state", state });
  }

  private post(message: ExplainPanelUpdate): void {
    void this.panel?.webview.postMessage(message);
  }

  dispose(): void {
    this.running?.abort();
    this.panel?.dispose();
  }
}

function finishedStatus(result: ExplainResult, maxTokens: number): string {
  const { genTokens, genMs, firstTokenMs } = result.timings;
  const parts = [
    `${result.stopReason === "cancelled" ? "Stopped" : "Done"}: ${formatTokens(genTokens)}, ${formatRate(genTokens, genMs)}, first after ${formatDuration(firstTokenMs)}`,
  ];
  if (result.stopReason === "length") parts.push(`stopped at pyramidCoder.explain.maxTokens (${maxTokens})`);
  if (result.contextDropped) parts.push("the lines around the selection did not fit the context and were left out");
  if (result.swappedOut) parts.push("the completion model was unloaded to make room; the next completion loads it again");
  return `${parts.join("; ")}.`;
}
