// End to end in a real VS Code (code-server 4.100.3 = Code 1.100.3, driven in Chromium): install a VSIX, open a
// Python file, type, see the inline suggestion as ghost text, accept it with Tab and find it in the saved file; then
// kill -9 the engine host and see the next completion arrive from a restarted one.
//
// Two extensions go through the same steps: a small fixture (test/e2e/fixture-extension) that proves the harness
// itself, and the packaged Pyramid Coder with the real engine on the demo model. Pyramid Coder starts with no model
// configured, as after a fresh install: the first keystrokes bring its "needs a model" notification (once), its button
// opens the file dialog, the demo model chosen there is loaded (under a progress notification) and saved as
// pyramidCoder.modelPath, and only then does ghost text come. Every notification toast is recorded in the page as it
// appears (workbench.ts, recordToasts), so that one shown for a moment, such as the progress of a fast load, is seen.
//
// Runs wherever it can: linux-x64, Node 20, Chromium, and code-server installed (test/e2e/install.ts) or buildable.
// Elsewhere it skips with the reason; with PYRAMID_E2E=required (CI) a missing piece fails instead, and
// PYRAMID_E2E=off skips it. Screenshots of every step, and code-server's logs (the extension host's, each output
// channel's), go to test/.cache/e2e/<suite>/.
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { e2eBlockers, startCodeServer, type CodeServer } from "./code-server";
import { fixtureExtension, packagedExtension, REPO_ROOT } from "./vsix";
import type { GhostText, Workbench } from "./workbench";

const MODE = process.env.PYRAMID_E2E ?? "auto";
const ARTIFACTS = path.join(REPO_ROOT, "test", ".cache", "e2e");
const DEMO_MODEL = path.join(REPO_ROOT, "media", "models", "tiny-code-q8_0.gguf");
/** The process the extension forks for inference; the test finds it by this in its command line. */
const ENGINE_HOST = "engine-host.js";

/** What the extension says when it is asked to complete with no model configured, and its button. */
const NEEDS_MODEL = /^Pyramid Coder needs a CodeLLaMA GGUF model\b/;
const CHOOSE_MODEL = "Choose model file…";
/** The title of its file dialog (model-picker.ts). */
const PICKER_TITLE = "Pyramid Coder: choose a CodeLLaMA GGUF model";
/** Its confirmation once the chosen model is loaded and saved. */
const COMPLETES_WITH = /^Pyramid Coder completes with /;
/** Its status bar item's id: `<publisher>.<name>.<item id>` (status-bar.ts). */
const STATUS_ITEM = "pyramid-coder.pyramid-coder.pyramidCoder.status";

function blockers(): string[] {
  const found = e2eBlockers();
  try {
    createRequire(__filename).resolve("playwright-core");
  } catch {
    found.push("playwright-core is not installed (npm install)");
  }
  return found;
}

const blocked = MODE === "off" ? ["PYRAMID_E2E=off"] : blockers();
if (blocked.length > 0 && MODE === "required") {
  throw new Error(`PYRAMID_E2E=required but the end-to-end tests cannot run: ${blocked.join("; ")}`);
}
if (blocked.length > 0) console.warn(`[e2e] skipped: ${blocked.join("; ")}`);

const SOURCE = `def add(a, b):
    return a + b


def fibonacci(n):
`;

/** Typed at the end of SOURCE, one after another until one gets a suggestion (the fixture answers the first). */
const FIRST_LINES = ["    if n < 2:", "return fibonacci(", "print("];
/** Typed on a new line after the first suggestion, once the engine host has been killed. */
const AFTER_RESTART_LINES = ["x = fibonacci(", "print(", "return fibonacci(n - 1) +"];

/** Whitespace-insensitive: accepting a suggestion may reindent or drop trailing spaces, not change the code. */
const squash = (s: string) => s.replace(/\s+/g, "");

function log(line: string): void {
  console.log(`[e2e] ${line}`);
}

interface Suite {
  name: string;
  /** The VSIX to install, built into `outDir`, or the reason it cannot be had (the tests skip with it). */
  vsix: (outDir: string) => string | { unavailable: string };
  settings: Record<string, unknown>;
  /** Seconds for the first suggestion (code-server starting the extension host, the extension loading a model). */
  firstTimeoutMs: number;
  /** Extra checks of a suggestion, given the engine host that must have produced it. */
  checkGhost?: (ghost: GhostText, hostPid: number) => void;
  /**
   * The extension starts without a model: the first typed line must bring the "needs a model" notification, and the
   * model is chosen through its button and the file dialog before any suggestion can come.
   */
  choosesModel?: {
    file: string;
    /** The progress notification while the chosen file loads. */
    loading: RegExp;
  };
  /** The progress notification that a restarted engine host's reload of the model must show. */
  reloadNotification?: RegExp;
}

const suites: Suite[] = [
  {
    name: "fixture",
    vsix: fixtureExtension,
    settings: {},
    firstTimeoutMs: 60_000,
    checkGhost: (ghost, hostPid) => expect(ghost.text).toMatch(new RegExp(`^(\n        return n)?  # from host ${hostPid}$`)),
  },
  {
    name: "pyramid-coder",
    vsix: (outDir) => {
      const result = packagedExtension(outDir, log);
      return "vsix" in result ? result.vsix : result;
    },
    // No pyramidCoder.modelPath: the test chooses the demo model the way a user would (nothing depends on a download).
    settings: {},
    firstTimeoutMs: 120_000,
    // load-progress.ts's notification, which every model load shows.
    choosesModel: { file: DEMO_MODEL, loading: /^Pyramid Coder: loading the model/ },
    reloadNotification: /^Pyramid Coder: loading the model/,
  },
];

for (const suite of suites) {
  describe.skipIf(blocked.length > 0)(`e2e in code-server: ${suite.name}`, () => {
    let server: CodeServer | undefined;
    let workbench: Workbench | undefined;
    let scratch = "";
    let workspace = "";
    let unavailable = "";
    const shots = path.join(ARTIFACTS, suite.name);

    beforeAll(async () => {
      scratch = mkdtempSync(path.join(os.tmpdir(), "pyramid-e2e-"));
      const vsix = suite.vsix(scratch);
      if (typeof vsix !== "string") {
        unavailable = vsix.unavailable;
        if (MODE === "required") throw new Error(unavailable);
        console.warn(`[e2e] ${suite.name} skipped: ${unavailable}`);
        return;
      }
      rmSync(shots, { recursive: true, force: true });
      mkdirSync(shots, { recursive: true });
      workspace = path.join(scratch, "workspace");
      mkdirSync(workspace);
      writeFileSync(path.join(workspace, "main.py"), SOURCE);
      const started = Date.now();
      server = await startCodeServer({ workspace, vsix: [vsix], settings: suite.settings, keepLogsIn: path.join(shots, "logs"), log });
      const { Workbench } = await import("./workbench");
      workbench = await Workbench.open(server, shots);
      log(`${suite.name}: workbench up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      await workbench.screenshot("workbench");
    }, 900_000);

    afterAll(async () => {
      await workbench?.close().catch(() => {});
      if (server) {
        await server.stop();
        expect(server.leftovers(), "processes left after code-server stopped").toEqual([]);
      }
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    /**
     * Types the first of `lines` where the cursor is, then each further one on a new line, until one gets a
     * suggestion: accepts it with Tab, saves, checks the file on disk, and returns it. Several lines because what the
     * demo model suggests (or whether the extension's rules leave anything of it) may differ with the CPU's rounding.
     */
    async function completeOneOf(lines: string[], step: string, firstTimeoutMs: number): Promise<GhostText> {
      const wb = workbench!;
      for (const [i, line] of lines.entries()) {
        if (i > 0) {
          await wb.press("Control+End");
          await wb.press("Enter");
        }
        await wb.type(line);
        const ghost = await wb.waitForGhostText(i === 0 ? firstTimeoutMs : 20_000).catch(() => undefined);
        if (!ghost) {
          log(`${suite.name} ${step}: no suggestion after ${JSON.stringify(line)}`);
          await wb.screenshot(`${step}-no-ghost`);
          continue;
        }
        log(`${suite.name} ${step}: ghost text ${JSON.stringify(ghost.text)} after ${JSON.stringify(line)}`);
        await wb.screenshot(`${step}-ghost`);
        await wb.acceptWithTab();
        await wb.save();
        await wb.screenshot(`${step}-accepted`);
        const saved = readFileSync(path.join(workspace, "main.py"), "utf8");
        expect(squash(saved)).toContain(squash(line + ghost.text));
        return ghost;
      }
      // What the extension said: its output channels and the extension host's log.
      const logs = server!.readLogs(/exthost\.log$|output_logging/).split("\n").slice(-60).join("\n");
      throw new Error(`${step}: no ghost text after any of ${JSON.stringify(lines)}; editor shows:\n${await wb.visibleText()}\n${logs}`);
    }

    function engineHosts(): number[] {
      return server!.findProcesses(ENGINE_HOST);
    }

    /**
     * Settings as code-server has them on disk ({} where the file is not there yet; VS Code writes plain JSON).
     * `User` is the browser side's user settings (where the harness puts DEFAULT_SETTINGS); `Machine` is the user
     * settings of the machine the extension host runs on, VS Code's "Remote" settings: code-server is a remote window,
     * so a "machine-overridable" setting such as pyramidCoder.modelPath, updated at the Global target, is written
     * there, as it would be over Remote-SSH (the path is one on the machine that runs the engine).
     */
    function settingsOnDisk(which: "User" | "Machine"): Record<string, unknown> {
      const file = path.join(server!.userDataDir, which, "settings.json");
      return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
    }

    /**
     * With no model configured: types a line, sees the "needs a model" notification, types on (it must not come
     * again), clicks its button, types the model's path into the file dialog, and sees the model loaded under a
     * progress notification, written to settings.json and confirmed.
     */
    async function chooseModelWhenAsked(model: { file: string; loading: RegExp }): Promise<void> {
      const wb = workbench!;
      for (const which of ["User", "Machine"] as const) {
        expect(settingsOnDisk(which)["pyramidCoder.modelPath"], `pyramidCoder.modelPath in ${which}/settings.json at the start`).toBeUndefined();
      }
      await wb.type(FIRST_LINES[0]);
      const asked = await wb.waitForToast(NEEDS_MODEL, suite.firstTimeoutMs);
      log(`${suite.name}: asked ${JSON.stringify(asked.message)} [${asked.buttons.join(" | ")}]`);
      expect(asked.severity).toBe("info");
      expect(asked.buttons).toContain(CHOOSE_MODEL);
      // More keystrokes, each a completion request without a model: the notification must stay the one already
      // shown. Checked here, and again once the model is loaded, long after these requests have been answered.
      await wb.press("Enter");
      await wb.type("return n");
      const needsModel = async () => (await wb.toasts()).filter((t) => NEEDS_MODEL.test(t.message));
      expect((await needsModel()).length, `"needs a model" shown once, among:\n${wb.describeToasts(await wb.toasts())}`).toBe(1);
      await wb.waitForToastShown(NEEDS_MODEL);
      await wb.screenshot("no-model-notification");
      expect(await wb.ghostText(), "ghost text with no model").toBeUndefined();
      expect(await wb.statusBarText(STATUS_ITEM)).toContain("Pyramid: no model");

      await wb.clickToastButton(NEEDS_MODEL, CHOOSE_MODEL);
      const dialog = await wb.waitForFileDialog(PICKER_TITLE);
      expect(dialog.okLabel).toBe("Use this model");
      await wb.typeInFileDialog(model.file);
      await wb.screenshot("file-dialog");
      await wb.acceptFileDialog();

      const confirmed = await wb.waitForToast(COMPLETES_WITH, 60_000);
      await wb.waitForToastShown(COMPLETES_WITH);
      await expect.poll(() => wb.statusBarText(STATUS_ITEM), { timeout: 10_000 }).toMatch(/^Pyramid\b(?!.*(no model|loading|error))/);
      await wb.screenshot("model-chosen");
      log(`${suite.name}: ${JSON.stringify(confirmed.message)}`);
      expect(confirmed.message).toMatch(/^Pyramid Coder completes with .+ \(\d+ layers, context \d+ tokens, KV \w+\)\.$/);
      // Saved before the confirmation was shown; where: see settingsOnDisk.
      expect(settingsOnDisk("Machine")["pyramidCoder.modelPath"], "pyramidCoder.modelPath in Machine/settings.json").toBe(model.file);
      expect(settingsOnDisk("User")["pyramidCoder.modelPath"], "pyramidCoder.modelPath in User/settings.json").toBeUndefined();

      const toasts = await wb.toasts();
      log(`${suite.name}: notifications so far:\n${wb.describeToasts(toasts)}`);
      const loading = toasts.filter((t) => model.loading.test(t.message));
      expect(loading.length, `a notification ${model.loading} among:\n${wb.describeToasts(toasts)}`).toBeGreaterThan(0);
      // Shown while the model loaded: a progress bar, after the file was chosen, before the confirmation, and gone
      // once the model is in.
      expect(loading[0].progress, "the loading notification shows progress").toBe(true);
      expect(loading[0].index).toBeGreaterThan(asked.index);
      expect(loading[0].index).toBeLessThan(confirmed.index);
      await expect.poll(async () => (await wb.toasts())[loading[0].index].goneAt !== undefined, { timeout: 10_000 }).toBe(true);
      expect(toasts.filter((t) => t.severity === "error"), "error notifications").toEqual([]);
      expect((await needsModel()).length, `"needs a model" shown once, among:\n${wb.describeToasts(toasts)}`).toBe(1);

      // The next line is typed below what was typed without a model.
      await wb.press("Control+End");
      await wb.press("Enter");
    }

    it(
      suite.choosesModel
        ? "asks once for a model, loads the one chosen in the file dialog, then shows ghost text that Tab puts in the document"
        : "shows ghost text for a typed line and Tab puts it in the document",
      async (context) => {
        if (unavailable) return context.skip(unavailable);
        const wb = workbench!;
        await wb.openFile("main.py");
        await wb.focusEditorEnd();
        await wb.screenshot("file-open");
        const lines = suite.choosesModel ? FIRST_LINES.slice(1) : FIRST_LINES;
        if (suite.choosesModel) await chooseModelWhenAsked(suite.choosesModel);
        const ghost = await completeOneOf(lines, "first", suite.firstTimeoutMs);
        const hosts = engineHosts();
        expect(hosts.length, `processes running ${ENGINE_HOST} under code-server`).toBeGreaterThan(0);
        suite.checkGhost?.(ghost, hosts[hosts.length - 1]);
        if (suite.choosesModel) {
          expect((await wb.toasts()).filter((t) => NEEDS_MODEL.test(t.message)).length, `"needs a model" shown once`).toBe(1);
        }
      },
    );

    it("completes again after the engine host is killed", async (context) => {
      if (unavailable) return context.skip(unavailable);
      const wb = workbench!;
      const before = engineHosts();
      expect(before.length).toBeGreaterThan(0);
      const toastsBefore = (await wb.toasts()).length;
      for (const pid of before) process.kill(pid, "SIGKILL");
      await expect.poll(() => engineHosts().filter((pid) => before.includes(pid)), { timeout: 10_000 }).toEqual([]);
      log(`${suite.name}: killed ${ENGINE_HOST} ${before.join(", ")}`);
      await wb.screenshot("host-killed");
      // A new line below the accepted suggestion: End leaves any multi-line suggestion's last line.
      await wb.press("Control+End");
      await wb.press("Enter");
      const ghost = await completeOneOf(AFTER_RESTART_LINES, "after-restart", 60_000);
      const restarted = engineHosts().filter((pid) => !before.includes(pid));
      expect(restarted.length, `a restarted ${ENGINE_HOST}`).toBeGreaterThan(0);
      suite.checkGhost?.(ghost, restarted[restarted.length - 1]);
      if (suite.reloadNotification) {
        // The restarted host loaded the model again, under load-progress.ts's notification.
        const toasts = await wb.toasts();
        const since = toasts.slice(toastsBefore);
        log(`${suite.name}: notifications after the kill:\n${wb.describeToasts(since)}`);
        const reload = since.filter((t) => suite.reloadNotification!.test(t.message));
        expect(reload.length, `a notification ${suite.reloadNotification} after the kill, among:\n${wb.describeToasts(since)}`).toBeGreaterThan(0);
        expect(reload[0].progress, "the reload notification shows progress").toBe(true);
        if (suite.choosesModel) expect(toasts.filter((t) => NEEDS_MODEL.test(t.message)).length, `"needs a model" shown once`).toBe(1);
      }
    });
  });
}
