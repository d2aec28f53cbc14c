// The page both webviews (status panel, explanation) load: a strict content security policy in which only this
// page's own nonce-carrying script runs and only the extension's media/ files load, so neither a model's output nor
// anything else can run code or fetch from the network; the look comes from the editor's theme variables.
import { randomBytes } from "node:crypto";
import * as vscode from "vscode";

/** Where the webviews' files are; nothing else is readable from inside them. */
export function mediaRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, "media");
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, enableCommandUris: false, localResourceRoots: [mediaRoot(extensionUri)] };
}

/** The HTML of a webview whose body is `body` (static markup, no scripts) and whose behaviour is media/`script`. */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, options: { title: string; script: string; body: string }): string {
  const nonce = randomBytes(16).toString("base64");
  const media = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot(extensionUri), file)).toString();
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${options.title}</title>
<link rel="stylesheet" href="${media("panel.css")}">
<script nonce="${nonce}" src="${media(options.script)}" defer></script>
</head>
<body>
${options.body}
</body>
</html>`;
}
