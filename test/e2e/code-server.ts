// A real VS Code for end-to-end tests: code-server from npm (Code 1.100.3 served to a browser), installed once into a
// cache folder outside the repository and started per test with fresh extension and user-data folders.
//
// Why code-server and not @vscode/test-electron: test-electron downloads VS Code at run time, and CI reaches only the
// npm registry and Debian's archive. code-server's npm package builds its native modules from source, which needs the
// Debian packages in REQUIRED_DEBIAN_PACKAGES (.ci/run installs them).
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";

export const CODE_SERVER_VERSION = "4.100.3";
/** The Code release inside CODE_SERVER_VERSION (its lib/vscode/package.json). */
export const CODE_VERSION = "1.100.3";

/** What code-server's native modules and our browser driver need; .ci/run installs them with apt-get. */
export const REQUIRED_DEBIAN_PACKAGES = [
  "pkg-config",
  "libkrb5-dev",
  "libx11-dev",
  "libxkbfile-dev",
  "libsecret-1-dev",
  "ripgrep",
  "chromium",
];

export const CHROMIUM_PATH = process.env.PYRAMID_E2E_CHROMIUM ?? "/usr/bin/chromium";

/**
 * $PYRAMID_E2E_CACHE, else $XDG_CACHE_HOME/pyramid-coder-e2e, else ~/.cache/pyramid-coder-e2e. Outside the repository
 * so that a clean checkout, `git clean` or a second worktree reuses the one install.
 */
export function e2eCacheDir(): string {
  if (process.env.PYRAMID_E2E_CACHE) return path.resolve(process.env.PYRAMID_E2E_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "pyramid-coder-e2e");
}

function installDir(): string {
  return path.join(e2eCacheDir(), `code-server-${CODE_SERVER_VERSION}`);
}

/** code-server's entry point once installed; the marker file is written only after a complete install. */
function entryPoint(dir = installDir()): string {
  return path.join(dir, "node_modules", "code-server", "out", "node", "entry.js");
}

function installMarker(dir = installDir()): string {
  return path.join(dir, "installed.json");
}

export function isCodeServerInstalled(): boolean {
  return existsSync(installMarker()) && existsSync(entryPoint());
}

function commandExists(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

function pkgConfigHas(module: string): boolean {
  return spawnSync("pkg-config", ["--exists", module], { stdio: "ignore" }).status === 0;
}

/**
 * Why this machine cannot run the end-to-end tests, or [] when it can. Installing code-server needs Node 20 (its
 * post-install refuses any other major), a C++ compiler and the -dev packages; running it needs Chromium.
 */
export function e2eBlockers(): string[] {
  const blockers: string[] = [];
  if (process.platform !== "linux" || process.arch !== "x64") blockers.push(`platform ${process.platform}-${process.arch} (linux-x64 only)`);
  const nodeMajor = Number(process.versions.node.split(".")[0]);
  if (nodeMajor !== 20) blockers.push(`Node ${process.versions.node} (code-server ${CODE_SERVER_VERSION} needs Node 20)`);
  if (!existsSync(CHROMIUM_PATH)) blockers.push(`no Chromium at ${CHROMIUM_PATH} (apt-get install chromium)`);
  if (!isCodeServerInstalled()) {
    const missing: string[] = [];
    if (!commandExists("pkg-config")) missing.push("pkg-config");
    else {
      if (!pkgConfigHas("krb5-gssapi")) missing.push("libkrb5-dev");
      if (!pkgConfigHas("x11")) missing.push("libx11-dev");
      if (!pkgConfigHas("xkbfile")) missing.push("libxkbfile-dev");
      if (!pkgConfigHas("libsecret-1")) missing.push("libsecret-1-dev");
    }
    if (!existsSync("/usr/bin/rg")) missing.push("ripgrep");
    if (!commandExists("g++") || !commandExists("make")) missing.push("g++ make");
    if (missing.length > 0) blockers.push(`code-server is not installed and cannot be built: missing ${missing.join(" ")}`);
  }
  return blockers;
}

/**
 * @vscode/ripgrep's post-install downloads ripgrep from GitHub unless the release archive is already in
 * $TMPDIR/vscode-ripgrep-cache-<its version>/. Debian's rg, packed under the archive's name, stands in for it.
 * The folder is per patch version; code-server 4.100.3 pins 1.15.11, the neighbours cost nothing.
 */
function seedRipgrepCache(tmpDir: string): void {
  const stage = mkdtempSync(path.join(tmpDir, "rg-"));
  copyFileSync("/usr/bin/rg", path.join(stage, "rg"));
  const archive = path.join(stage, "ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz");
  execFileSync("tar", ["czf", archive, "-C", stage, "rg"]);
  for (let patch = 9; patch <= 14; patch++) {
    const cache = path.join(tmpDir, `vscode-ripgrep-cache-1.15.${patch}`);
    mkdirSync(cache, { recursive: true });
    copyFileSync(archive, path.join(cache, path.basename(archive)));
  }
}

/** Running, not a zombie (a container's PID 1 may never reap an orphan, which is dead all the same). */
/**
 * node-gyp downloads Node's headers from nodejs.org unless told where they are, and CI reaches only the npm registry
 * and Debian. The Node packages for Debian install them beside the binary (/usr/include/node).
 */
function nodeHeaders(): Record<string, string> {
  if (process.env.npm_config_nodedir) return {};
  const prefix = path.dirname(path.dirname(process.execPath));
  return existsSync(path.join(prefix, "include", "node", "node_api.h")) ? { npm_config_nodedir: prefix } : {};
}

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One installer at a time across processes (two vitest workers, or CI's prepare step and a test). */
async function withInstallLock<T>(fn: () => T): Promise<T> {
  const lock = path.join(e2eCacheDir(), "install.lock");
  mkdirSync(e2eCacheDir(), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, "pid"), String(process.pid));
      break;
    } catch {
      let owner = 0;
      try {
        owner = Number(readFileSync(path.join(lock, "pid"), "utf8"));
      } catch {
        // The owner made the folder and has not written its pid yet.
      }
      if (owner > 0 && !isAlive(owner)) rmSync(lock, { recursive: true, force: true });
      else await sleep(2000);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Installs code-server once (several minutes: it compiles node-pty, spdlog, kerberos, ...) and returns its entry
 * point; later calls reuse the install. The install goes to a staging folder renamed into place when complete, so an
 * interrupted one never looks finished.
 */
export async function ensureCodeServer(log: (line: string) => void = () => {}): Promise<string> {
  if (isCodeServerInstalled()) return entryPoint();
  const blockers = e2eBlockers();
  if (blockers.length > 0) throw new Error(`cannot install code-server: ${blockers.join("; ")}`);
  return withInstallLock(() => {
    if (isCodeServerInstalled()) return entryPoint();
    const started = Date.now();
    const finalDir = installDir();
    const stage = `${finalDir}.partial-${process.pid}`;
    rmSync(stage, { recursive: true, force: true });
    const tmpDir = path.join(stage, "tmp");
    mkdirSync(tmpDir, { recursive: true });
    seedRipgrepCache(tmpDir);
    writeFileSync(path.join(stage, "package.json"), JSON.stringify({ name: "pyramid-coder-e2e-code-server", private: true }, null, 2));
    log(`installing code-server@${CODE_SERVER_VERSION} into ${finalDir} (once; several minutes)`);
    const result = spawnSync(
      "npm",
      ["install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error", `code-server@${CODE_SERVER_VERSION}`],
      {
        cwd: stage,
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
        env: {
          ...process.env,
          // As root, code-server's post-install refuses to run without unsafe-perm; node-pty's post-install runs
          // `npx node-gyp`, which would stop at npx's "Ok to proceed?" prompt without yes.
          npm_config_yes: "true",
          npm_config_unsafe_perm: "true",
          ...nodeHeaders(),
          TMPDIR: tmpDir,
        },
      },
    );
    writeFileSync(path.join(stage, "install.log"), `${result.stdout ?? ""}\n${result.stderr ?? ""}`);
    if (result.status !== 0 || !existsSync(entryPoint(stage))) {
      const tail = `${result.stdout ?? ""}\n${result.stderr ?? ""}`.split("\n").slice(-40).join("\n");
      throw new Error(`npm install code-server@${CODE_SERVER_VERSION} failed (status ${result.status}; log in ${stage}/install.log):\n${tail}`);
    }
    rmSync(tmpDir, { recursive: true, force: true });
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(installMarker(stage), JSON.stringify({ version: CODE_SERVER_VERSION, node: process.version, seconds }, null, 2));
    rmSync(finalDir, { recursive: true, force: true });
    renameSync(stage, finalDir);
    log(`code-server installed in ${seconds} s`);
    return entryPoint();
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Every live process below `root`, from /proc (ppid is field 4 of /proc/PID/stat, after the parenthesized name). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // Exited while we looked.
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/**
 * Processes whose environment holds `name=value`. Every process code-server starts inherits its environment, so a
 * marker there finds them all, even one that left the process group and was re-parented after its parent died.
 */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}\0`;
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").includes(needle)) found.push(Number(entry));
    } catch {
      // Exited, or not ours to read.
    }
  }
  return found;
}

const MARKER = "PYRAMID_E2E_SERVER";

export interface CodeServerOptions {
  /** The folder VS Code opens. */
  workspace: string;
  /** VSIX files to install before the server starts. */
  vsix?: string[];
  /** User settings (user-data-dir/User/settings.json), over DEFAULT_SETTINGS. */
  settings?: Record<string, unknown>;
  /** Where stop() copies code-server's logs (user-data-dir/logs: the extension host's and each output channel's). */
  keepLogsIn?: string;
  log?: (line: string) => void;
}

export interface CodeServer {
  url: string;
  /** The workbench URL with the workspace opened. */
  workspaceUrl: string;
  port: number;
  pid: number;
  workspace: string;
  userDataDir: string;
  extensionsDir: string;
  /** code-server's stdout and stderr so far. */
  output(): string;
  /** The log files under user-data-dir/logs whose path matches, each under a header with its path. */
  readLogs(pathPattern: RegExp): string;
  /** Processes below code-server whose command line contains `needle` (e.g. the engine host). */
  findProcesses(needle: string): number[];
  /** Processes code-server started (by the environment marker) that are still alive: [] after stop(). */
  leftovers(): number[];
  /** Stops code-server and everything it started; idempotent. */
  stop(): Promise<void>;
}

/**
 * Quiet, deterministic editor: no welcome page, no recommendations or update checks (CI has no network), and no
 * word-based suggest widget, whose Tab would compete with the inline suggestion's.
 */
export const DEFAULT_SETTINGS: Record<string, unknown> = {
  "editor.inlineSuggest.enabled": true,
  "editor.quickSuggestions": { other: "off", comments: "off", strings: "off" },
  "editor.suggestOnTriggerCharacters": false,
  "editor.wordBasedSuggestions": "off",
  "editor.parameterHints.enabled": false,
  "editor.hover.enabled": false,
  "editor.minimap.enabled": false,
  "editor.fontSize": 16,
  "files.autoSave": "off",
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "extensions.ignoreRecommendations": true,
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "update.mode": "none",
  "telemetry.telemetryLevel": "off",
  "security.workspace.trust.enabled": false,
  "chat.commandCenter.enabled": false,
  "git.enabled": false,
};

function codeServerEnv(home: string): NodeJS.ProcessEnv {
  // code-server keeps its config and logs under XDG folders: point them into the temp dir, away from the real home.
  return {
    ...process.env,
    XDG_CONFIG_HOME: path.join(home, "config"),
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CACHE_HOME: path.join(home, "cache"),
    [MARKER]: home,
    // The extension host inherits this; no node debugger or vitest worker options may leak into it.
    NODE_OPTIONS: "",
  };
}

async function waitForHttp(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`code-server exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (response.status < 500) return;
    } catch {
      // Not listening yet.
    }
    await sleep(250);
  }
  throw new Error(`code-server did not answer ${url} within ${timeoutMs} ms:\n${output()}`);
}

function readLogs(dir: string, pattern: RegExp): string {
  if (!existsSync(dir)) return "";
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((name) => path.join(dir, name))
    .filter((file) => pattern.test(file) && statSync(file).isFile())
    .map((file) => `--- ${path.relative(dir, file)}\n${readFileSync(file, "utf8")}`)
    .join("\n");
}

export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  const log = options.log ?? (() => {});
  const entry = await ensureCodeServer(log);
  const home = mkdtempSync(path.join(os.tmpdir(), "pyramid-e2e-code-"));
  const userDataDir = path.join(home, "user-data");
  const extensionsDir = path.join(home, "extensions");
  mkdirSync(path.join(userDataDir, "User"), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(
    path.join(userDataDir, "User", "settings.json"),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...options.settings }, null, 2),
  );
  const env = codeServerEnv(home);
  const dirs = ["--extensions-dir", extensionsDir, "--user-data-dir", userDataDir];

  for (const vsix of options.vsix ?? []) {
    const started = Date.now();
    const result = spawnSync(process.execPath, [entry, ...dirs, "--install-extension", vsix], {
      env,
      encoding: "utf8",
      timeout: 120_000,
    });
    if (result.status !== 0) {
      rmSync(home, { recursive: true, force: true });
      throw new Error(`code-server --install-extension ${vsix} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
    }
    log(`installed ${path.basename(vsix)} in ${Date.now() - started} ms`);
  }

  const port = await freePort();
  let output = "";
  // detached: its own process group, so stop() reaches the extension host, pty host and file watcher too.
  const child = spawn(
    process.execPath,
    [
      entry,
      "--auth", "none",
      "--bind-addr", `127.0.0.1:${port}`,
      ...dirs,
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      "--ignore-last-opened",
      options.workspace,
    ],
    { env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 1_000_000) output = output.slice(-500_000);
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const pid = child.pid!;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const everyone = () => [...new Set([pid, ...descendants(pid), ...processesWithEnv(MARKER, home)])].filter(isAlive);
    const signalAll = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        // The group is gone.
      }
      // Anything that left the group (setsid, a detached child) is found by its environment.
      for (const p of everyone()) {
        try {
          process.kill(p, signal);
        } catch {
          // Already gone.
        }
      }
    };
    signalAll("SIGTERM");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && everyone().length > 0) await sleep(100);
    while (everyone().length > 0) {
      signalAll("SIGKILL");
      await sleep(100);
    }
    if (options.keepLogsIn && existsSync(path.join(userDataDir, "logs"))) {
      rmSync(options.keepLogsIn, { recursive: true, force: true });
      cpSync(path.join(userDataDir, "logs"), options.keepLogsIn, { recursive: true });
    }
    rmSync(home, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitForHttp(`${url}healthz`, child, () => output, 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  log(`code-server ${CODE_SERVER_VERSION} (pid ${pid}) at ${url}`);
  return {
    url,
    workspaceUrl: `${url}?folder=${encodeURIComponent(options.workspace)}`,
    port,
    pid,
    workspace: options.workspace,
    userDataDir,
    extensionsDir,
    output: () => output,
    readLogs: (pattern) => readLogs(path.join(userDataDir, "logs"), pattern),
    findProcesses: (needle) => descendants(pid).filter((p) => commandLine(p).includes(needle)),
    leftovers: () => processesWithEnv(MARKER, home).filter(isAlive),
    stop,
  };
}
