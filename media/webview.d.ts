// What VS Code gives a webview's script, typed by the messages that script may post
// (extension/core/webview-messages.ts). For `tsc -p media` only; it is not packaged.
interface WebviewApi<Request> {
  postMessage(message: Request): void;
}

declare function acquireVsCodeApi<Request>(): WebviewApi<Request>;
