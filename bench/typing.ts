// Typing latency through the real engine host, the way the extension drives it: an EngineClient forks
// dist/engine-host.js, and each keystroke goes down the provider's request path (extractFimContext, the debounce,
// decideMultiline + StopRules on the streamed text, postProcess; a newer keystroke cancels the request in flight).
// Measures, per keystroke that started a request, the time from the keystroke to the first streamed token text
// (the first ghost text), for the KV policies full and pyramid, each with prefix reuse on (the host's one session, as
// in the extension) and off (complete's freshSession: every request computes its whole prompt).
//   npm run bench -- typing [--policies full,pyramid] [--positions 4] [--chars 20] [--chars-fresh 5]
//                           [--debounce 50] [--min-gap 100] [--max-gap 150] [--max-tokens 16] [--threads 2]
//                           [--context-size 4096] [--lines 2000] [--no-reuse-off] [--json]
// The document: Python standard library files concatenated (sorted by name) up to --lines lines. At each of
// --positions cursor positions spread over it, a real line is emptied (its indentation kept) and its first --chars
// characters are typed back one at a time, a seeded random gap of --min-gap..--max-gap ms apart; the typist then waits
// for the last request to finish before moving on. Before typing at a position (reuse on only) one unmeasured request
// at the cursor stands for the user having clicked there and paused. The model: a generated TinyLlama-1.1B-shaped
// Q4_0 file with random weights (speed does not depend on the values; the text is noise, so the stop rules cut it at
// random places).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { decideMultiline, postProcess, StopRules, type StopDecision } from "../extension/core/completion-rules";
import { extractFimContext } from "../extension/core/fim-context";
import { EngineError, type LoadModelParams } from "../extension/core/protocol";
import { EngineClient } from "../extension/host/engine-client";
import type { KvPolicyName } from "../extension/host/native";
import { SHAPES, testModelPath } from "../test/support/test-models";

const ROOT = path.resolve(__dirname, "..", "..");
const HOST = path.join(ROOT, "dist", "engine-host.js");
/** The provider's defaults (package.json: pyramidCoder.completion.*). */
const LINES_BEFORE = 128;
const LINES_AFTER = 32;
const MAX_LINES = 8;

interface Sample {
  config: string;
  position: number;
  keystroke: number;
  /** Keystroke to first streamed token text, ms; null when a newer keystroke cancelled it before that. */
  firstTokenMs: number | null;
  /** Keystroke to the response, ms. */
  doneMs: number;
  promptTokens: number;
  reusedTokens: number;
  stopReason: string;
  shown: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** mulberry32: the keystroke gaps are the same in every configuration. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function buildDocument(lines: number): { text: string; sources: string[] } {
  const dirs = readdirSync("/usr/lib")
    .filter((d) => /^python3\.\d+$/.test(d))
    .sort()
    .map((d) => path.join("/usr/lib", d));
  if (dirs.length === 0) throw new Error("no /usr/lib/python3.N directory to build the document from");
  const dir = dirs[0];
  const out: string[] = [];
  const sources: string[] = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".py")).sort()) {
    if (out.length >= lines) break;
    out.push(...readFileSync(path.join(dir, name), "utf8").split("\n"));
    sources.push(path.join(dir, name));
  }
  return { text: out.slice(0, lines).join("\n") + "\n", sources };
}

/** Line numbers spread over the document, each moved down to a line with at least `chars` characters after its indent. */
function pickPositions(lines: string[], count: number, chars: number): number[] {
  const picked: number[] = [];
  for (let i = 1; i <= count; i++) {
    let line = Math.floor((lines.length * i) / (count + 1));
    while (line < lines.length && lines[line].trim().length < chars) line++;
    if (line >= lines.length) throw new Error(`no line of ${chars}+ characters after line ${Math.floor((lines.length * i) / (count + 1))}`);
    picked.push(line);
  }
  return picked;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  return sorted[low] + (sorted[Math.min(low + 1, sorted.length - 1)] - sorted[low]) * (rank - low);
}

const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN);

function ensureHostBuilt(): void {
  const sources = ["extension/host", "extension/core"].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir)).map((f) => path.join(ROOT, dir, f)),
  );
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (existsSync(HOST) && statSync(HOST).mtimeMs >= newest) return;
  console.error("dist/engine-host.js is older than its sources: running node esbuild.mjs");
  const built = spawnSync(process.execPath, ["esbuild.mjs"], { cwd: ROOT, stdio: "inherit" });
  if (built.status !== 0) throw new Error("node esbuild.mjs failed");
}

interface Options {
  debounceMs: number;
  minGap: number;
  maxGap: number;
  maxTokens: number;
}

/** One request as provider.ts makes it, timed from the keystroke at `keystrokeAt`. */
async function request(
  client: EngineClient,
  load: LoadModelParams,
  text: string,
  line: number,
  character: number,
  fresh: boolean,
  options: Options,
  signal: AbortSignal,
  keystrokeAt: number,
): Promise<Omit<Sample, "config" | "position" | "keystroke"> | undefined> {
  const { prefix, suffix } = extractFimContext(text, line, character, { linesBefore: LINES_BEFORE, linesAfter: LINES_AFTER });
  const lineText = text.split("\n", line + 1)[line];
  const linePrefix = lineText.slice(0, character);
  const lineSuffix = lineText.slice(character);
  const languageId = "python";
  const multiline = decideMultiline(linePrefix, lineSuffix, languageId);
  const rules = new StopRules({ multiline, maxLines: MAX_LINES, cursorIndent: /^[ \t]*/.exec(lineText)![0], linePrefix, languageId });
  const abort = new AbortController();
  const forward = () => abort.abort();
  signal.addEventListener("abort", forward, { once: true });
  let streamed = "";
  let decision: StopDecision = { text: "", stop: false };
  let firstTokenMs: number | null = null;
  try {
    const result = await client.complete(
      load,
      { prefix, suffix, format: "spm", maxTokens: options.maxTokens, temperature: 0, ...(fresh ? { freshSession: true } : {}) },
      {
        signal: abort.signal,
        onToken: (piece) => {
          if (firstTokenMs === null && piece !== "" && !signal.aborted) firstTokenMs = performance.now() - keystrokeAt;
          if (decision.stop) return;
          streamed += piece;
          decision = rules.push(streamed);
          if (decision.stop) abort.abort();
        },
      },
    );
    if (!decision.stop) decision = rules.push(result.text);
    const doneMs = performance.now() - keystrokeAt;
    const cancelled = result.stopReason === "cancelled" && !decision.stop;
    const shown = !cancelled && !signal.aborted && postProcess(decision.text, { linePrefix, lineSuffix, suffix, multiline, languageId }) !== undefined;
    return {
      firstTokenMs,
      doneMs,
      promptTokens: result.timings.promptTokens,
      reusedTokens: result.timings.reusedTokens,
      stopReason: decision.stop ? "rules" : result.stopReason,
      shown,
    };
  } catch (error) {
    if (error instanceof EngineError && error.code === "cancelled") return undefined;
    throw error;
  } finally {
    signal.removeEventListener("abort", forward);
  }
}

async function runConfig(
  client: EngineClient,
  config: string,
  load: LoadModelParams,
  fresh: boolean,
  doc: string,
  positions: number[],
  chars: number,
  options: Options,
): Promise<{ samples: Sample[]; keystrokes: number }> {
  const samples: Sample[] = [];
  const random = seeded(20261126);
  let keystrokes = 0;
  const summary = await client.ensureModel(load);
  console.error(`${config}: model loaded in ${summary.loadMs} ms (${summary.kvPolicy}, context ${summary.contextSize})`);
  for (const [p, line] of positions.entries()) {
    const lines = doc.split("\n");
    const original = lines[line];
    const indent = /^[ \t]*/.exec(original)![0];
    const typed = original.slice(indent.length, indent.length + chars);
    const textWith = (count: number) => [...lines.slice(0, line), indent + typed.slice(0, count), ...lines.slice(line + 1)].join("\n");
    if (!fresh) {
      // The user clicks at the line and pauses: the session holds this neighbourhood before the typing starts.
      const never = new AbortController();
      await request(client, load, textWith(0), line, indent.length, false, options, never.signal, performance.now());
    }
    let inFlight: { abort: AbortController; done: Promise<void> } | undefined;
    for (let k = 1; k <= typed.length; k++) {
      const keystrokeAt = performance.now();
      keystrokes++;
      // The editor cancels the previous ask on each keystroke.
      inFlight?.abort.abort();
      const abort = new AbortController();
      const text = textWith(k);
      const keystroke = k;
      const done = (async () => {
        await sleep(options.debounceMs);
        if (abort.signal.aborted) return;
        const result = await request(client, load, text, line, indent.length + keystroke, fresh, options, abort.signal, keystrokeAt);
        if (result) samples.push({ config, position: p, keystroke, ...result });
      })();
      inFlight = { abort, done };
      if (k < typed.length) await sleep(options.minGap + random() * (options.maxGap - options.minGap));
    }
    await inFlight?.done;
  }
  return { samples, keystrokes };
}

async function main() {
  const started = performance.now();
  const { values } = parseArgs({
    options: {
      policies: { type: "string", default: "full,pyramid" },
      positions: { type: "string", default: "4" },
      chars: { type: "string", default: "20" },
      "chars-fresh": { type: "string", default: "5" },
      debounce: { type: "string", default: "50" },
      "min-gap": { type: "string", default: "100" },
      "max-gap": { type: "string", default: "150" },
      "max-tokens": { type: "string", default: "16" },
      threads: { type: "string", default: "2" },
      "context-size": { type: "string", default: "4096" },
      lines: { type: "string", default: "2000" },
      "no-reuse-off": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const options: Options = {
    debounceMs: Number(values.debounce),
    minGap: Number(values["min-gap"]),
    maxGap: Number(values["max-gap"]),
    maxTokens: Number(values["max-tokens"]),
  };
  ensureHostBuilt();
  const { text: doc, sources } = buildDocument(Number(values.lines));
  const docLines = doc.split("\n");
  const chars = Number(values.chars);
  const positions = pickPositions(docLines, Number(values.positions), chars);
  const modelPath = testModelPath({ ...SHAPES.tinyllama, weightType: "Q4_0", fill: "random-blocks", contextLength: 16384 });
  const client = new EngineClient(HOST, { log: (line) => console.error(`  host: ${line}`) });
  const rows: Record<string, unknown>[] = [];
  try {
    for (const policy of values.policies.split(",") as KvPolicyName[]) {
      const load: LoadModelParams = { path: modelPath, contextSize: Number(values["context-size"]), threads: Number(values.threads), kv: { policy } };
      for (const fresh of values["no-reuse-off"] ? [false] : [false, true]) {
        const config = `${policy}, prefix reuse ${fresh ? "off" : "on"}`;
        const configStarted = performance.now();
        const { samples, keystrokes } = await runConfig(client, config, load, fresh, doc, positions, fresh ? Number(values["chars-fresh"]) : chars, options);
        const timed = samples.filter((s) => s.firstTokenMs !== null).map((s) => s.firstTokenMs!);
        const computed = samples.filter((s) => s.promptTokens > 0);
        const row = {
          configuration: config,
          keystrokes,
          requests: samples.length,
          firstTokens: timed.length,
          promptTokensMean: mean(computed.map((s) => s.promptTokens)),
          reusedTokensMean: mean(computed.map((s) => s.reusedTokens)),
          firstTokenP50: percentile(timed, 50),
          firstTokenP95: percentile(timed, 95),
          shown: samples.filter((s) => s.shown).length,
          seconds: (performance.now() - configStarted) / 1000,
          samples,
        };
        rows.push(row);
        console.error(
          `${config}: ${keystrokes} keystrokes, ${samples.length} requests, ${timed.length} reached a first token, ` +
            `p50 ${row.firstTokenP50.toFixed(0)} ms, p95 ${row.firstTokenP95.toFixed(0)} ms (${row.seconds.toFixed(1)} s)`,
        );
      }
    }
  } finally {
    await client.dispose();
  }
  const scenario =
    `Scenario: a ${docLines.length - 1}-line Python file (${sources.map((s) => path.basename(s)).join(", ")} from ${path.dirname(sources[0])}, ` +
    `truncated), cursor at lines ${positions.map((l) => l + 1).join(", ")}; at each, the line's first ${chars} characters ` +
    `(${values["chars-fresh"]} with prefix reuse off) are typed back one at a time, ${options.minGap}-${options.maxGap} ms apart, ` +
    `debounce ${options.debounceMs} ms, a newer keystroke cancels the request in flight; prompt = provider's FIM window ` +
    `(${LINES_BEFORE} lines before, ${LINES_AFTER} after, SPM), maxTokens ${options.maxTokens}, context ${values["context-size"]}, ` +
    `${values.threads} threads, TinyLlama-1.1B-shaped Q4_0 (random weights) through dist/engine-host.js. ` +
    `First token = keystroke to the first streamed token text, over the requests that got one before being cancelled.`;
  if (values.json) {
    for (const row of rows) console.log(JSON.stringify(row));
    console.log(JSON.stringify({ scenario, wallSeconds: (performance.now() - started) / 1000 }));
    return;
  }
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "-");
  console.log(scenario);
  console.log("");
  console.log("| configuration | keystrokes | requests | with first token | prompt tokens mean | reused tokens mean | first token p50 ms | first token p95 ms |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows as { [k: string]: number & string }[]) {
    console.log(
      `| ${r.configuration} | ${r.keystrokes} | ${r.requests} | ${r.firstTokens} | ${f(r.promptTokensMean)} | ${f(r.reusedTokensMean)} | ${f(r.firstTokenP50)} | ${f(r.firstTokenP95)} |`,
    );
  }
  console.log("");
  console.log(`Wall time ${((performance.now() - started) / 1000).toFixed(1)} s.`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
