// Drives code-server's workbench in Debian's Chromium through playwright-core: open a file, type, read the inline
// suggestion (ghost text) from the editor's DOM, accept it with Tab, save, take screenshots; record every notification
// toast that appears, click a toast's button, and answer VS Code's simple file dialog; find a webview's document
// (status panel, explanation) among the page's frames, open the editor's context menu and pick an item.
import { mkdirSync } from "node:fs";
import path from "node:path";

import { chromium, type Browser, type Frame, type Page } from "playwright-core";

import { CHROMIUM_PATH, type CodeServer } from "./code-server";

/** Flags for a headless Chromium in a container without a GPU, a sandbox, or network beyond localhost. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/**
 * How Code 1.100 renders an inline suggestion (read from its DOM): the part that extends the cursor's line is injected
 * text, `.ghost-text-decoration` spans inside the line (`-preview` while a suggest-widget item previews); the lines
 * after it are a view zone, `.suggest-preview-text`, with one `.view-line` per line made of `.ghost-text` spans.
 */
const INLINE_GHOST = ".ghost-text-decoration, .ghost-text-decoration-preview";
const GHOST_LINES = ".suggest-preview-text .view-line";
/** The text box of Quick Open, the command palette and quick picks (the widget holds other inputs: a check-all box). */
const QUICK_INPUT = ".quick-input-widget .quick-input-box input";

export const GHOST_TEXT_SELECTOR = `${INLINE_GHOST}, .suggest-preview-text .ghost-text`;

export interface GhostText {
  /** The suggestion as the editor shows it: the text after the cursor on its line, then any further lines. */
  text: string;
  /** The part on the cursor's line. */
  inline: string;
  /** Lines shown below the cursor's line. */
  lines: string[];
}

/**
 * The little of the DOM that the page functions below use. They run in the browser; the repository's tsconfig has no
 * "dom" lib (a global one would hide DOM use in Node code), so they are typed against this instead.
 */
interface DomNode {
  nodeType: number;
  childNodes: ArrayLike<DomNode>;
  textContent: string | null;
  isConnected: boolean;
  classList: { contains(name: string): boolean };
  style: { top: string };
  querySelector(selector: string): DomNode | null;
  querySelectorAll(selector: string): ArrayLike<DomNode>;
}
declare const document: DomNode & {
  body: DomNode | null;
  activeElement: { blur(): void } | null;
  addEventListener(type: string, listener: () => void): void;
};
declare const MutationObserver: new (callback: () => void) => { observe(target: DomNode, options: Record<string, unknown>): void };

/** One notification toast as the recorder saw it (see recordToasts). */
export interface ToastRecord {
  /** Order of appearance in the page, from 0. */
  index: number;
  /** The message as shown (a progress notification's title, with ": <report>" once it reports one). */
  message: string;
  /** The labels of its buttons. */
  buttons: string[];
  severity: "info" | "warning" | "error" | "";
  /** Whether it ever showed a progress bar (a withProgress notification). */
  progress: boolean;
  /** The page's clock (ms since the epoch) when it was first seen among the toasts, and when it left them. */
  shownAt: number;
  goneAt?: number;
}

/** Toast records one a line, for logs and failure messages. */
export function describeToasts(toasts: ToastRecord[]): string {
  return toasts
    .map((t) => `#${t.index} ${t.severity || "-"}${t.progress ? " progress" : ""}${t.goneAt === undefined ? "" : " (gone)"} ${JSON.stringify(t.message)}${t.buttons.length ? ` [${t.buttons.join(" | ")}]` : ""}`)
    .join("\n");
}

/**
 * Runs in the page before the workbench's own scripts (addInitScript): a MutationObserver that keeps a record, in
 * `globalThis.__pyramidToasts`, of every notification toast that is ever shown, however briefly. A toast is one
 * `.notification-toast-container` in `.notifications-toasts`, created per notification (VS Code closes a duplicate and
 * adds a new one, so a message shown twice is two records). It is read when the observer runs, after the task that
 * laid the toasts out: one that did not fit and was taken out again in the same task was never on screen.
 */
function recordToasts(): void {
  const page = globalThis as unknown as { top: unknown; __pyramidToasts?: ToastRecord[] };
  if (page.top !== globalThis || page.__pyramidToasts) return; // not in webviews' frames; once per page
  const records: ToastRecord[] = [];
  page.__pyramidToasts = records;
  const seen = new Map<DomNode, ToastRecord>();
  const text = (node: DomNode | null) => (node?.textContent ?? "").replace(/\u00a0/g, " ").trim();
  const scan = () => {
    const now = Date.now();
    for (const toast of Array.from(document.querySelectorAll(".notifications-toasts .notification-toast-container"))) {
      let record = seen.get(toast);
      if (!record) {
        record = { index: records.length, message: "", buttons: [], severity: "", progress: false, shownAt: now };
        seen.set(toast, record);
        records.push(record);
      }
      const message = text(toast.querySelector(".notification-list-item-message"));
      if (message) record.message = message;
      const buttons = Array.from(toast.querySelectorAll(".notification-list-item-buttons-container .monaco-button")).map(text);
      if (buttons.length > 0) record.buttons = buttons;
      const icon = toast.querySelector(".notification-list-item-icon");
      for (const severity of ["info", "warning", "error"] as const) {
        if (icon?.classList.contains(`codicon-${severity}`)) record.severity = severity;
      }
      if (toast.querySelector(".monaco-progress-container.active")) record.progress = true;
    }
    for (const [toast, record] of seen) {
      if (record.goneAt === undefined && !toast.isConnected) record.goneAt = now;
    }
  };
  const start = () => {
    new MutationObserver(scan).observe(document.body!, {
      childList: true,
      subtree: true,
      characterData: true,
      attributes: true,
      attributeFilter: ["class"],
    });
    scan();
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Workbench {
  private shots = 0;
  readonly console: string[] = [];

  private constructor(
    private readonly browser: Browser,
    readonly page: Page,
    private readonly screenshotDir: string,
  ) {}

  /** Opens the workspace and waits for the workbench and its explorer. */
  static async open(server: CodeServer, screenshotDir: string): Promise<Workbench> {
    mkdirSync(screenshotDir, { recursive: true });
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const workbench = new Workbench(browser, page, screenshotDir);
      page.on("console", (message) => workbench.console.push(`[${message.type()}] ${message.text()}`));
      page.on("pageerror", (error) => workbench.console.push(`[pageerror] ${error.message}`));
      await page.addInitScript(recordToasts);
      await page.goto(server.workspaceUrl, { waitUntil: "domcontentloaded", timeout: 60_000 });
      await page.waitForSelector(".monaco-workbench", { timeout: 90_000 });
      await page.waitForSelector(".explorer-folders-view .monaco-list-row", { timeout: 90_000 });
      return workbench;
    } catch (error) {
      await browser.close();
      throw error;
    }
  }

  async screenshot(name: string): Promise<string> {
    this.shots += 1;
    const file = path.join(this.screenshotDir, `${String(this.shots).padStart(2, "0")}-${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** Quick Open (Ctrl+P), the file's name, Enter; waits for its editor to take focus. */
  async openFile(name: string): Promise<void> {
    const { page } = this;
    await page.keyboard.press("Control+P");
    const input = page.locator(QUICK_INPUT);
    await input.waitFor({ state: "visible", timeout: 15_000 });
    await input.fill(name);
    await page
      .locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: name })
      .first()
      .waitFor({ timeout: 30_000 });
    await page.keyboard.press("Enter");
    await page.locator(`.tabs-container .tab.active[aria-label*="${name}"]`).waitFor({ timeout: 30_000 });
    await this.editorLines().waitFor({ state: "visible", timeout: 30_000 });
  }

  private editorLines() {
    return this.page.locator(".editor-instance .monaco-editor .view-lines").first();
  }

  /** Clicks into the active editor and moves the cursor to the end of the document. */
  async focusEditorEnd(): Promise<void> {
    await this.editorLines().click();
    await this.page.keyboard.press("Control+End");
  }

  /** Types like a person (one key at a time), which is what triggers inline completion. */
  async type(text: string, delayMs = 40): Promise<void> {
    await this.page.keyboard.type(text, { delay: delayMs });
  }

  async press(key: string): Promise<void> {
    await this.page.keyboard.press(key);
  }

  /** The ghost text shown now, or undefined. Spaces come back as spaces (the DOM renders them as U+00A0). */
  async ghostText(): Promise<GhostText | undefined> {
    const parts = await this.page.evaluate(
      ([inlineSelector, linesSelector]) => {
        const editor = document.querySelector(".editor-instance .monaco-editor") ?? document;
        const texts = (selector: string) => Array.from(editor.querySelectorAll(selector)).map((e) => e.textContent ?? "");
        return { inline: texts(inlineSelector), lines: texts(linesSelector) };
      },
      [INLINE_GHOST, GHOST_LINES] as const,
    );
    const clean = (s: string) => s.replace(/\u00a0/g, " ");
    const inline = clean(parts.inline.join(""));
    const lines = parts.lines.map(clean);
    if (inline === "" && lines.every((line) => line === "")) return undefined;
    return { text: [inline, ...lines].join("\n"), inline, lines };
  }

  /** Waits until ghost text is shown and has stopped changing for a moment (a streaming provider may grow it). */
  async waitForGhostText(timeoutMs: number): Promise<GhostText> {
    const deadline = Date.now() + timeoutMs;
    let last: GhostText | undefined;
    let stableSince = 0;
    while (Date.now() < deadline) {
      const now = await this.ghostText();
      if (now && now.text === last?.text) {
        if (Date.now() - stableSince >= 500) return now;
      } else {
        last = now;
        stableSince = Date.now();
      }
      await sleep(100);
    }
    throw new Error(`no ghost text within ${timeoutMs} ms; editor shows:\n${await this.visibleText()}\nnotifications: ${await this.notifications()}`);
  }

  /**
   * Tab accepts the whole inline suggestion; waits for the editor's lines to change. Not for the ghost text to go: a
   * provider may show the next suggestion right after the accepted one.
   */
  async acceptWithTab(): Promise<void> {
    const before = await this.visibleText();
    await this.page.keyboard.press("Tab");
    const deadline = Date.now() + 10_000;
    while ((await this.visibleText()) === before) {
      if (Date.now() > deadline) throw new Error("Tab did not change the document");
      await sleep(50);
    }
  }

  /** Ctrl+S, then waits for the active tab to lose its dirty mark, so the file on disk is the document. */
  async save(): Promise<void> {
    await this.page.keyboard.press("Control+S");
    await this.page.locator(".tabs-container .tab.active:not(.dirty)").waitFor({ timeout: 15_000 });
  }

  /**
   * The document's lines as the editor renders them, top to bottom (only what is scrolled into view), without the
   * ghost text that an inline suggestion injects into its line.
   */
  async visibleText(): Promise<string> {
    return this.page.evaluate(() => {
      const isGhost = (node: DomNode) =>
        node.nodeType === 1 && (node.classList.contains("ghost-text-decoration") || node.classList.contains("ghost-text-decoration-preview"));
      const text = (node: DomNode): string =>
        node.nodeType === 3 ? (node.textContent ?? "") : isGhost(node) ? "" : Array.from(node.childNodes).map(text).join("");
      const rows = Array.from(document.querySelectorAll(".editor-instance .monaco-editor .view-lines .view-line"));
      rows.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
      return rows.map((row) => text(row).replace(/\u00a0/g, " ")).join("\n");
    });
  }

  /** The texts of the notification toasts now shown. */
  async notifications(): Promise<string[]> {
    return this.page.locator(".notifications-toasts .notification-list-item-message").allInnerTexts();
  }

  /** Every notification toast shown since the page loaded, in order, from the recorder (recordToasts). */
  async toasts(): Promise<ToastRecord[]> {
    return this.page.evaluate(() => (globalThis as unknown as { __pyramidToasts?: ToastRecord[] }).__pyramidToasts ?? []);
  }

  /** Toast records one a line (see describeToasts), for logs and failure messages. */
  describeToasts(toasts: ToastRecord[]): string {
    return describeToasts(toasts);
  }

  /** Waits until a toast whose message matches has been shown (now or earlier, from the `since`th record on). */
  async waitForToast(message: RegExp, timeoutMs: number, since = 0): Promise<ToastRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const toasts = await this.toasts();
      const found = toasts.find((toast) => toast.index >= since && message.test(toast.message));
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no notification matching ${message} within ${timeoutMs} ms; toasts so far:\n${describeToasts(toasts)}`);
      }
      await sleep(100);
    }
  }

  /** The toast now shown whose message matches. */
  private toast(message: RegExp) {
    return this.page
      .locator(".notifications-toasts .notification-toast-container")
      .filter({ has: this.page.locator(".notification-list-item-message", { hasText: message }) });
  }

  /** Waits until the toast whose message matches is on screen, done sliding in (for a screenshot). */
  async waitForToastShown(message: RegExp, timeoutMs = 10_000): Promise<void> {
    // The toast slides in with a CSS transition and is marked done at its end; with reduced motion there is none.
    try {
      await this.toast(message)
        .locator(".notification-toast.notification-fade-in-done, .monaco-reduce-motion .notification-toast")
        .waitFor({ state: "visible", timeout: timeoutMs });
    } catch (error) {
      const toasts = describeToasts(await this.toasts());
      throw new Error(`no toast matching ${message} stayed on screen within ${timeoutMs} ms; toasts so far:\n${toasts}`, { cause: error });
    }
  }

  /** The text of a status bar item (without its icon), by the item's id. */
  async statusBarText(id: string): Promise<string> {
    return (await this.page.locator(`.statusbar-item[id="${id}"]`).innerText({ timeout: 10_000 })).trim();
  }

  /** Clicks the button labelled `label` on the toast now shown whose message matches. */
  async clickToastButton(message: RegExp, label: string): Promise<void> {
    await this.toast(message).locator(".notification-list-item-buttons-container .monaco-button", { hasText: label }).click({ timeout: 10_000 });
  }

  /**
   * Waits for VS Code's simple file dialog (what showOpenDialog opens in code-server: a quick input whose box holds a
   * path, listing the folder's entries) with this title; returns the label of its OK button.
   */
  async waitForFileDialog(title: string, timeoutMs = 30_000): Promise<{ okLabel: string }> {
    const widget = this.page.locator(".quick-input-widget");
    await widget.locator(".quick-input-title", { hasText: title }).waitFor({ state: "visible", timeout: timeoutMs });
    await widget.locator(".quick-input-box input").waitFor({ state: "visible", timeout: timeoutMs });
    const okLabel = await widget.locator(".quick-input-action .monaco-button").first().innerText().catch(() => "");
    return { okLabel: okLabel.trim() };
  }

  /**
   * Types an absolute path into the file dialog's box, and waits until the dialog has gone to the file's folder and
   * lists the file (it navigates and completes as the path changes) with the box still holding the whole path, on two
   * looks in a row. The dialog fills the box with its start folder when it opens and may do so again once that folder
   * is listed: a path typed before that is put back in.
   */
  async typeInFileDialog(file: string, timeoutMs = 30_000): Promise<void> {
    const widget = this.page.locator(".quick-input-widget");
    const input = widget.locator(".quick-input-box input");
    const listed = widget.locator(".quick-input-list .monaco-list-row", { hasText: path.basename(file) }).first();
    const deadline = Date.now() + timeoutMs;
    let looks = 0;
    for (;;) {
      const value = await input.inputValue();
      if (value !== file) {
        looks = 0;
        await input.fill(file);
      } else if (await listed.isVisible()) {
        if (++looks === 2) return;
      } else {
        looks = 0;
      }
      if (Date.now() > deadline) throw new Error(`the file dialog shows ${JSON.stringify(value)} and does not list ${JSON.stringify(file)}`);
      await sleep(100);
    }
  }

  /** Enter in the file dialog: accepts the path in its box; waits for the dialog to close. */
  async acceptFileDialog(timeoutMs = 30_000): Promise<void> {
    await this.page.keyboard.press("Enter");
    await this.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: timeoutMs });
  }

  /** The text box of Quick Open, the command palette and quick picks. */
  quickInput() {
    return this.page.locator(QUICK_INPUT);
  }

  /** Clicks a status bar item by its id (what a user clicks to open what the item's command opens). */
  async clickStatusBarItem(id: string): Promise<void> {
    await this.page.locator(`.statusbar-item[id="${id}"] .statusbar-item-label`).click({ timeout: 10_000 });
  }

  /**
   * The frame of the webview whose document holds `selector`. Code 1.100 puts each webview in an iframe within an
   * iframe (the outer one is its host page), and neither says whose webview it is, so the documents are searched.
   */
  async webview(selector: string, timeoutMs = 30_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const frame of this.page.frames()) {
        if (frame === this.page.mainFrame()) continue;
        const found = await frame.$(selector).catch(() => null);
        if (found) return frame;
      }
      if (Date.now() > deadline) throw new Error(`no webview with ${selector} within ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /**
   * Starts recording, inside a webview's document, the texts of the elements with these ids at every change of the
   * document: what it showed between two looks from here (a streamed answer that grows many times a second).
   */
  async recordTexts(frame: Frame, ids: string[]): Promise<void> {
    await frame.evaluate((watched) => {
      const page = globalThis as unknown as {
        document: { getElementById(id: string): { textContent: string | null } | null; body: unknown };
        MutationObserver: new (callback: () => void) => { observe(target: unknown, options: object): void };
        __recorded: Record<string, string>[];
      };
      page.__recorded = [];
      const record = () =>
        page.__recorded.push(Object.fromEntries(watched.map((id) => [id, page.document.getElementById(id)?.textContent ?? ""])));
      new page.MutationObserver(record).observe(page.document.body, { subtree: true, childList: true, characterData: true });
    }, ids);
  }

  /** What recordTexts recorded so far, one entry per change. */
  async recordedTexts(frame: Frame): Promise<Record<string, string>[]> {
    return frame.evaluate(() => (globalThis as unknown as { __recorded?: Record<string, string>[] }).__recorded ?? []);
  }

  /** Selects whole lines `from`..`to` (1-based, inclusive) of the active editor: Quick Open's ":line", then Shift+Down. */
  async selectLines(from: number, to: number): Promise<void> {
    const input = this.page.locator(QUICK_INPUT);
    await this.editorLines().click();
    await this.press("Control+P");
    await input.waitFor({ state: "visible", timeout: 10_000 });
    await input.fill(`:${from}`);
    await this.press("Enter");
    await input.waitFor({ state: "hidden", timeout: 10_000 });
    await this.press("Home");
    await this.press("Home");
    for (let line = from; line <= to; line++) await this.press("Shift+ArrowDown");
  }

  /** Opens the editor's context menu at the cursor (Shift+F10, keeping the selection) and picks the item `label`. */
  async editorContextMenu(label: string): Promise<void> {
    await this.press("Shift+F10");
    const item = this.page.locator(".context-view .monaco-menu .action-item .action-label", { hasText: label }).first();
    await item.waitFor({ state: "visible", timeout: 10_000 });
    await this.screenshot("context-menu");
    await item.click();
  }

  /** Runs a command by its title through the command palette (F1); `staysOpen`: it opens a quick pick of its own. */
  async runCommand(title: string, options: { staysOpen?: boolean } = {}): Promise<void> {
    const input = this.page.locator(QUICK_INPUT);
    const row = this.page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: title }).first();
    // With the focus in a webview (a panel's slider), F1 goes through the webview's key forwarding, which can drop
    // it, and the webview can take the focus back and close the palette as it opens: press from the workbench's
    // page, and start again if the palette is not there to type into.
    for (let attempt = 1; ; attempt++) {
      await this.page.evaluate(() => document.activeElement?.blur());
      await this.press("F1");
      try {
        await input.waitFor({ state: "visible", timeout: 5_000 });
        await input.fill(`>${title}`, { timeout: 5_000 });
        await row.waitFor({ timeout: 10_000 });
        break;
      } catch (error) {
        if (attempt === 3) throw error;
        await this.press("Escape");
      }
    }
    await this.press("Enter");
    if (!options.staysOpen) await input.waitFor({ state: "hidden", timeout: 10_000 });
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}
