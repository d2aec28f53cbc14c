// The explanation panel's script: shows the state the extension posts (title, the answer as HTML that
// extension/core/markdown.ts rendered from the model's Markdown, escaping everything it does not produce itself,
// and a status line) and sends Stop. Titles and status go in with textContent.
// @ts-check
/** @typedef {import("../extension/core/webview-messages").ExplainPanelRequest} ExplainPanelRequest */
/** @typedef {import("../extension/core/webview-messages").ExplainPanelUpdate} ExplainPanelUpdate */
(function () {
  /** @type {WebviewApi<ExplainPanelRequest>} */
  const vscode = acquireVsCodeApi();
  const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const stop = /** @type {HTMLButtonElement} */ (byId("stop"));
  stop.addEventListener("click", () => vscode.postMessage({ type: "stop" }));

  window.addEventListener("message", (event) => {
    const message = /** @type {ExplainPanelUpdate | undefined} */ (event.data);
    if (message?.type !== "state") return;
    const state = message.state;
    byId("title").textContent = state.title;
    byId("subtitle").textContent = state.subtitle;
    const answer = byId("answer");
    if (answer.dataset.html !== state.html) {
      answer.innerHTML = state.html;
      answer.dataset.html = state.html;
    }
    answer.setAttribute("aria-busy", String(state.running));
    byId("status").textContent = state.status;
    stop.disabled = !state.running;
  });
  vscode.postMessage({ type: "ready" });
})();
