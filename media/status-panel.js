// The status panel's script: lays out the view model the extension posts (extension/core/status-view.ts; every
// figure in it is already formatted) and sends back what the user does: a retention control moved (a preview of the
// unsaved value while it moves, then the setting on release) or a button pressed. Text goes in with textContent only.
// @ts-check
/** @typedef {import("../extension/core/status-view").StatusView} StatusView */
/** @typedef {import("../extension/core/status-view").CacheView} CacheView */
/** @typedef {import("../extension/core/status-view").ControlView} ControlView */
/** @typedef {import("../extension/core/webview-messages").StatusPanelRequest} StatusPanelRequest */
/** @typedef {import("../extension/core/webview-messages").StatusPanelUpdate} StatusPanelUpdate */
(function () {
  /** @type {WebviewApi<StatusPanelRequest>} */
  const vscode = acquireVsCodeApi();
  const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

  /** @type {Map<string, {inputs: HTMLInputElement[] | HTMLSelectElement[], row: HTMLElement[]}>} */
  const controls = new Map();
  let previewTimer = 0;
  /** Control values moved since the last saved settings arrived. @type {Record<string, string>} */
  let moved = {};

  /** @param {HTMLElement} list @param {[string, string | undefined][]} facts */
  function setFacts(list, facts) {
    list.replaceChildren();
    for (const [term, value] of facts) {
      if (value === undefined) continue;
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
  }

  /** One centred bar per layer. @param {HTMLElement} figure @param {CacheView | undefined} cache @param {string} caption */
  function setChart(figure, cache, caption) {
    figure.replaceChildren();
    if (!cache) return;
    const list = document.createElement("ol");
    list.setAttribute("aria-label", caption);
    for (const bar of cache.layers) {
      const item = document.createElement("li");
      const spoken = document.createElement("span");
      spoken.className = "sr-only";
      spoken.textContent = bar.label;
      const layer = document.createElement("span");
      layer.className = "layer";
      layer.textContent = `L${bar.layer}`;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "bar";
      fill.style.width = `${(bar.fraction * 100).toFixed(2)}%`;
      fill.title = bar.label;
      track.append(fill);
      const tokens = document.createElement("span");
      tokens.className = "tokens";
      tokens.textContent = bar.tokens.toLocaleString("en-US");
      for (const part of [layer, track, tokens]) part.setAttribute("aria-hidden", "true");
      item.append(spoken, layer, track, tokens);
      list.append(item);
    }
    const summary = document.createElement("figcaption");
    summary.textContent = cache.summary;
    figure.append(list, summary);
  }

  function schedulePreview() {
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(() => vscode.postMessage({ type: "preview", values: moved }), 80);
  }

  /** @param {string} key @param {string} value @param {boolean} save */
  function moveControl(key, value, save) {
    moved = { ...moved, [key]: value };
    schedulePreview();
    if (save) vscode.postMessage({ type: "set", key, value });
  }

  /** Builds the controls once, from the first view; later views only update their values. @param {ControlView[]} retention */
  function buildControls(retention) {
    const form = byId("retention");
    form.addEventListener("submit", (event) => event.preventDefault());
    for (const control of retention) {
      const id = `control-${control.key}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = control.label;
      label.title = control.help;
      const help = document.createElement("span");
      help.id = `${id}-help`;
      help.className = "sr-only";
      help.textContent = control.help;
      /** @type {HTMLElement[]} */
      const row = [label];
      if (control.kind === "select") {
        const select = document.createElement("select");
        select.id = id;
        select.setAttribute("aria-describedby", help.id);
        for (const option of control.options) {
          const element = document.createElement("option");
          element.value = option;
          element.textContent = option;
          select.append(element);
        }
        select.addEventListener("change", () => moveControl(control.key, select.value, true));
        row.push(select, help);
        controls.set(control.key, { inputs: [select], row });
      } else {
        const number = document.createElement("input");
        number.type = "number";
        number.id = id;
        Object.assign(number, { min: String(control.min), max: String(control.max), step: String(control.step) });
        number.setAttribute("aria-describedby", help.id);
        /** @type {HTMLInputElement[]} */
        const inputs = [number];
        // A slider where the range is short enough to be useful; token counts up to a million get the box alone.
        if ((control.max - control.min) / control.step <= 100) {
          const range = document.createElement("input");
          range.type = "range";
          Object.assign(range, { min: String(control.min), max: String(control.max), step: String(control.step) });
          range.setAttribute("aria-label", control.label);
          range.setAttribute("aria-describedby", help.id);
          range.addEventListener("input", () => {
            number.value = range.value;
            moveControl(control.key, range.value, false);
          });
          range.addEventListener("change", () => moveControl(control.key, range.value, true));
          number.addEventListener("input", () => (range.value = number.value));
          inputs.unshift(range);
          row.push(range);
        } else {
          row.push(document.createElement("span"));
        }
        number.addEventListener("input", () => number.validity.valid && number.value !== "" && moveControl(control.key, number.value, false));
        number.addEventListener("change", () => number.validity.valid && number.value !== "" && moveControl(control.key, number.value, true));
        row.push(number, help);
        controls.set(control.key, { inputs, row });
      }
      form.append(...row);
    }
    const error = document.createElement("p");
    error.id = "retention-error";
    error.className = "error";
    error.setAttribute("role", "alert");
    form.after(error);
  }

  /** @param {ControlView[]} retention */
  function updateControls(retention) {
    if (controls.size === 0) buildControls(retention);
    for (const control of retention) {
      const entry = controls.get(control.key);
      if (!entry) continue;
      for (const input of entry.inputs) {
        // Never under the user's hands: a control being used keeps what they set.
        if (document.activeElement !== input) input.value = String(control.value);
        input.title = control.inactive ? `${control.help} (not used by the current policy)` : control.help;
      }
      for (const element of entry.row) element.classList.toggle("inactive", control.inactive);
    }
  }

  /** @param {StatusView} view */
  function render(view) {
    const state = byId("state");
    state.textContent = view.state.detail ? `${view.state.label}: ${view.state.detail}` : view.state.label;
    state.dataset.tone = view.state.tone;
    byId("live").textContent = view.live ?? "";
    setFacts(byId("model"), [
      ["Model", view.model?.name],
      ["File", view.model?.detail],
      ["Shape", view.model?.shape],
      ["Explains with", view.explainModel ? `${view.explainModel.name} (${view.explainModel.detail})` : undefined],
    ]);
    if (view.cache) {
      setFacts(byId("cache"), [
        ["Policy", view.cache.policy],
        ["KV in use", view.cache.bytes],
        ["Against full", view.cache.share],
        ["Prompt", view.cache.tokens],
      ]);
    } else {
      setFacts(byId("cache"), [["KV in use", "no completion since the model was loaded"]]);
    }
    setChart(byId("cache-chart"), view.cache, view.cache ? `Tokens kept per layer after the last request: ${view.cache.summary}` : "");
    setFacts(byId("last"), view.lastCompletion
      ? [
          ["First token", view.lastCompletion.firstToken],
          ["Speed", view.lastCompletion.speed],
          ["Generated", view.lastCompletion.tokens],
          ["Prompt", view.lastCompletion.prompt],
        ]
      : []);
    updateControls(view.retention);
    const preview = view.preview;
    if ("unavailable" in preview) {
      byId("preview-title").textContent = preview.unavailable;
      setFacts(byId("preview"), []);
      setChart(byId("preview-chart"), undefined, "");
    } else {
      byId("preview-title").textContent = preview.title;
      setFacts(byId("preview"), [
        ["Policy", preview.policy],
        ["KV", preview.bytes],
        ["Against full", preview.share],
      ]);
      setChart(byId("preview-chart"), preview, `Tokens these settings would keep per layer: ${preview.summary}`);
    }
  }

  for (const button of document.querySelectorAll("button[data-command]")) {
    const command = /** @type {HTMLElement} */ (button).dataset.command ?? "";
    button.addEventListener("click", () => vscode.postMessage({ type: "command", command }));
  }
  window.addEventListener("message", (event) => {
    const message = /** @type {StatusPanelUpdate | undefined} */ (event.data);
    if (message?.type === "view") {
      render(message.view);
      const error = document.getElementById("retention-error");
      if (error) error.textContent = "";
    } else if (message?.type === "error") {
      const error = document.getElementById("retention-error");
      if (error) error.textContent = message.message;
    } else if (message?.type === "saved") {
      moved = {};
    }
  });
  vscode.postMessage({ type: "ready" });
})();
