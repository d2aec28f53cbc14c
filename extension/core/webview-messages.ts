// The messages between the extension and its two webviews, typed once for both ends: the adapters in
// extension/vscode/ send and receive these, and the webview scripts (media/*.js) import them in JSDoc, so that
// `tsc -p media` checks the scripts against the same definitions. What a webview sends is untrusted: the extension
// checks every field before it acts on one.
import type { StatusView } from "./status-view";

/** Extension -> status panel (media/status-panel.js). */
export type StatusPanelUpdate =
  | { type: "view"; view: StatusView }
  | { type: "error"; message: string }
  /** The moved controls are settings now: the panel forgets its unsaved values. */
  | { type: "saved" };

/** Status panel -> extension. `values` and `value` are what the controls hold, keyed by RetentionKey. */
export type StatusPanelRequest =
  | { type: "ready" }
  | { type: "preview"; values: Record<string, string> }
  | { type: "set"; key: string; value: string }
  | { type: "command"; command: string };

export interface ExplainPanelState {
  title: string;
  subtitle: string;
  /** The answer, already rendered by markdown.ts. */
  html: string;
  status: string;
  running: boolean;
}

/** Extension -> explanation panel (media/explain-panel.js). */
export type ExplainPanelUpdate = { type: "state"; state: ExplainPanelState };

/** Explanation panel -> extension. */
export type ExplainPanelRequest = { type: "ready" } | { type: "stop" };
