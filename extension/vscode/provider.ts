// Ghost-text completions: the editor asks on each keystroke (cancelling the previous ask); this waits out the
// debounce, serves the completion cache when it can, and otherwise asks the engine host for an infill, cut short by
// the stop rules as tokens stream in and cleaned by postProcess before it is shown. Word and line acceptance are the
// editor's own commands (editor.action.inlineSuggest.acceptNextWord / acceptNextLine) on the item returned here.
import * as vscode from "vscode";

import { CompletionCache } from "../core/completion-cache";
import { decideMultiline, postProcess, StopRules, type StopDecision } from "../core/completion-rules";
import { extractFimContext } from "../core/fim-context";
import { EngineError } from "../core/protocol";
import type { EngineClient } from "../host/engine-client";
import { languageEnabled, loadParams, readSettings } from "./settings";

export interface ProviderHooks {
  /** No model is configured: tell the user (once) how to pick one. */
  noModel(): void;
  /** A request failed for a reason the user can act on. */
  failed(error: Error): void;
  log(line: string): void;
}

/** Resolves true if the token was cancelled before `ms` passed. */
function cancellableDelay(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  if (token.isCancellationRequested) return Promise.resolve(true);
  if (ms <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      resolve(false);
    }, ms);
    const subscription = token.onCancellationRequested(() => {
      clearTimeout(timer);
      subscription.dispose();
      resolve(true);
    });
  });
}

export class CompletionProvider implements vscode.InlineCompletionItemProvider {
  private readonly cache = new CompletionCache(250);

  constructor(
    private readonly client: EngineClient,
    private readonly hooks: ProviderHooks,
  ) {}

  /** Forgets cached completions (after a model change they would be another model's). */
  clearCache(): void {
    this.cache.clear();
  }

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    _context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const settings = readSettings(document);
    if (!settings.completion.enabled || !languageEnabled(settings, document.languageId)) return undefined;

    const { prefix, suffix } = extractFimContext(document.getText(), position.line, position.character, {
      linesBefore: settings.completion.contextLinesBefore,
      linesAfter: settings.completion.contextLinesAfter,
    });
    const item = (text: string) => [new vscode.InlineCompletionItem(text, new vscode.Range(position, position))];
    const cached = this.cache.get(prefix, suffix);
    if (cached !== undefined) return item(cached);

    if (!settings.modelPath) {
      this.hooks.noModel();
      return undefined;
    }
    if (await cancellableDelay(settings.completion.debounceMs, token)) return undefined;

    const lineText = document.lineAt(position.line).text;
    const linePrefix = lineText.slice(0, position.character);
    const lineSuffix = lineText.slice(position.character);
    const languageId = document.languageId;
    const multiline = decideMultiline(linePrefix, lineSuffix, languageId);
    const editor = vscode.window.activeTextEditor;
    const tabSize = editor?.document === document && typeof editor.options.tabSize === "number" ? editor.options.tabSize : undefined;
    const rules = new StopRules({
      multiline,
      maxLines: settings.completion.maxLines,
      cursorIndent: /^[ \t]*/.exec(lineText)![0],
      linePrefix,
      languageId,
      tabSize,
    });

    // The editor's cancellation (a newer keystroke) and the stop rules both end the request through this signal.
    const abort = new AbortController();
    const subscription = token.onCancellationRequested(() => abort.abort());
    let streamed = "";
    let decision: StopDecision = { text: "", stop: false };
    try {
      const result = await this.client.complete(
        loadParams(settings),
        {
          prefix,
          suffix,
          format: settings.completion.fimFormat,
          maxTokens: settings.completion.maxTokens,
          temperature: settings.completion.temperature,
        },
        {
          signal: abort.signal,
          onToken: (text) => {
            if (decision.stop) return;
            streamed += text;
            decision = rules.push(streamed);
            if (decision.stop) abort.abort();
          },
        },
      );
      if (!decision.stop) decision = rules.push(result.text);
      const { promptTokens, reusedTokens, promptMs, genTokens, genMs } = result.timings;
      this.hooks.log(
        `completion: ${promptTokens} prompt tokens (${reusedTokens} reused) in ${promptMs.toFixed(0)} ms, ` +
          `${genTokens} generated in ${genMs.toFixed(0)} ms, ${decision.stop ? "stopped by the rules" : result.stopReason}`,
      );
      // A request the editor cancelled ended early: its text may be unfinished.
      if (result.stopReason === "cancelled" && !decision.stop) return undefined;
    } catch (error) {
      if (error instanceof EngineError && (error.code === "cancelled" || error.code === "host-exited" || error.code === "disposed")) {
        // Cancelled: superseded by a newer keystroke. Host gone: the status bar says so, and it is restarting.
        return undefined;
      }
      if (abort.signal.aborted && !(error instanceof EngineError)) return undefined;
      this.hooks.failed(error instanceof Error ? error : new Error(String(error)));
      return undefined;
    } finally {
      subscription.dispose();
    }

    const completion = postProcess(decision.text, { linePrefix, lineSuffix, suffix, multiline, languageId });
    if (completion === undefined) return undefined;
    this.cache.set(prefix, suffix, completion);
    return token.isCancellationRequested ? undefined : item(completion);
  }
}
