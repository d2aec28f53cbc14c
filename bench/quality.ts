// Quality under KV compression, with the trained demo model (media/models/tiny-code-q8_0.gguf):
//   npm run bench -- quality [--json] [--files 12] [--lines 8]
// For each policy and budget: perplexity of held-out code, greedy one-line infill compared with the full cache's,
// and the KV share each actually reached; then a session reusing its previous request's cache against a fresh
// compressed prefill, as typing does. Progress goes to stderr, the Markdown tables (or JSON rows) to stdout.
//
// The demo model was trained on 512-token windows, so every sequence here stays within 512 tokens. It uses little
// beyond its last ~32 tokens (shared/models/README.md), so expect every sensible policy to score about the same
// with it; the measurement is built to need no change for a model that does use long context.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { policyLabel } from "../extension/bench";
import { Model, type GenerateResult, type Session } from "../extension/host/engine";
import { demoModelPath, packageRoot, type KvPlan, type KvPolicyName, type KvPolicyOptions } from "../extension/host/native";

const CONTEXT_SIZE = 512; // the demo model's training window
const THREADS = 2;
const MIN_FILE_TOKENS = 600; // a file must fill the 512-token window with room to spare
const SCORED_CONTEXT = 448; // perplexity: tokens[0, 512) scored from 448 on, i.e. the last 64 under a compressed cache
const INFILL_PROMPT_TOKENS = 440; // leaves room for the typed half line and 24 generated tokens within 512
const INFILL_SUFFIX_TOKENS = 48;
const MIN_LINE_DEPTH_TOKENS = 350; // a removed line has at least this much of its file before it
const MIN_LINE_CHARS = 10; // non-space characters of code in a removed line
const COMPLETION_TOKENS = 24;
const NOMINAL_RATIOS = [0.9, 0.8, 0.7, 0.5, 0.3];
const COMPRESSING_POLICIES: KvPolicyName[] = ["pyramid", "streaming", "h2o"];
const BUDGET_MATCHED_POLICIES: KvPolicyName[] = ["streaming", "h2o"];
const REUSE_POLICIES: KvPolicyOptions[] = [{ policy: "full" }, { policy: "pyramid", targetRatio: 0.5 }];

type Language = "python" | "javascript" | "c";

interface SourceFile {
  language: Language;
  /** Where it is found under its root (node_modules, the Python library, /usr/include): what the table names. */
  name: string;
  path: string;
  text: string;
  tokens: Int32Array;
}

interface InfillCase {
  /** The removed line, without its newline: the completion stops at "\n". */
  line: string;
  prefix: string;
  suffix: string;
}

interface Measured<T> {
  value: T;
  /** kv.bytes / kv.fullBytes at the end of each request, averaged. */
  kvRatio: number;
}

interface PolicyRow {
  label: string;
  policy: KvPolicyName;
  nominalRatio: number;
  /** The targetRatio each task ran with (budget-matched rows take pyramid's measured ratio per task). */
  targetRatio: { perplexity?: number; infill?: number };
  perplexity: Measured<number>;
  infill: Measured<string[]>;
}

// Held-out files: ones any Debian machine has after `npm install` with python3 present, in the order they are
// tried (a missing, short or minified one is skipped for the next of its language). The npm packages' versions are
// pinned by package-lock.json; Python's standard library and glibc's headers follow the machine's versions, so
// compare figures between machines with care. "Held-out" only means they were not picked for training: the demo
// model's training corpus is not published, so we cannot prove it never saw them.
function candidateFiles(): Omit<SourceFile, "text" | "tokens">[] {
  const stdlib = pythonStdlibDir();
  const modules = path.join(packageRoot(), "node_modules");
  return [
    ...["textwrap.py", "shlex.py", "queue.py", "csv.py", "glob.py", "fnmatch.py"].map((f) => ({
      language: "python" as const,
      name: `${path.basename(stdlib)}/${f}`,
      path: path.join(stdlib, f),
    })),
    ...[
      "commander/lib/command.js",
      "semver/classes/range.js",
      "picomatch/lib/parse.js",
      "js-yaml/lib/loader.js",
      "micromatch/index.js",
      "braces/lib/parse.js",
    ].map((f) => ({ language: "javascript" as const, name: f, path: path.join(modules, f) })),
    ...["stdio.h", "string.h", "pthread.h", "regex.h", "unistd.h", "signal.h"].map((f) => ({
      language: "c" as const,
      name: f,
      path: path.join("/usr/include", f),
    })),
  ];
}

/** The newest /usr/lib/python3.N, as Debian's python3 installs it. */
function pythonStdlibDir(): string {
  const versions = readdirSync("/usr/lib")
    .map((name) => /^python3\.(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null && existsSync(path.join("/usr/lib", match[0], "textwrap.py")))
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  if (versions.length === 0) throw new Error("no Python standard library under /usr/lib/python3.*: install python3");
  return path.join("/usr/lib", versions[0][0]);
}

/** Bundled or minified code has very long lines; it is not what an editor shows. */
function looksGenerated(text: string): boolean {
  return text.split("\n").some((line) => line.length > 400);
}

/** The first `count` usable files, taking the languages in turn so any count stays balanced. */
async function loadHeldOutFiles(model: Model, count: number): Promise<SourceFile[]> {
  const usable: SourceFile[] = [];
  for (const candidate of candidateFiles()) {
    if (!existsSync(candidate.path)) continue;
    const text = readFileSync(candidate.path, "utf8");
    const tokens = await model.tokenize(text);
    if (tokens.length >= MIN_FILE_TOKENS && !looksGenerated(text)) usable.push({ ...candidate, text, tokens });
  }
  const byLanguage = (["python", "javascript", "c"] as const).map((language) => usable.filter((f) => f.language === language));
  const files: SourceFile[] = [];
  for (let rank = 0; files.length < count && byLanguage.some((list) => rank < list.length); ++rank) {
    for (const list of byLanguage) if (rank < list.length && files.length < count) files.push(list[rank]);
  }
  return files;
}

/**
 * Each line's code with comments (and, in Python, anything on a line touching a triple-quoted string) removed; a
 * line that starts inside a block comment or docstring has none. Deliberately simple: it only has to keep comment
 * and docstring lines out of the infill cases.
 */
function codeParts(lines: string[], language: Language): string[] {
  if (language === "python") {
    let openQuote: string | null = null;
    return lines.map((line) => {
      const startsInString = openQuote !== null;
      const quotes = line.match(/"""|'''/g) ?? [];
      for (const quote of quotes) {
        if (openQuote === null) openQuote = quote;
        else if (openQuote === quote) openQuote = null;
      }
      return startsInString || quotes.length > 0 ? "" : line.split("#")[0];
    });
  }
  let inComment = false;
  return lines.map((line) => {
    let code = "";
    for (let at = 0; at < line.length; ) {
      if (inComment) {
        const end = line.indexOf("*/", at);
        if (end < 0) break;
        inComment = false;
        at = end + 2;
      } else {
        const start = line.indexOf("/*", at);
        const lineComment = line.indexOf("//", at);
        if (lineComment >= 0 && (start < 0 || lineComment < start)) {
          code += line.slice(at, lineComment);
          break;
        }
        code += line.slice(at, start < 0 ? line.length : start);
        if (start < 0) break;
        inComment = true;
        at = start + 2;
      }
    }
    return code;
  });
}

/**
 * `count` infill cases from one file: lines of code at least MIN_LINE_DEPTH_TOKENS into it, spread evenly over the
 * eligible ones. The prompt is SPM, so the code before the cursor ends the prompt: the part a recent window protects
 * and the part typing extends.
 */
async function infillCases(model: Model, prompter: Session, file: SourceFile, count: number): Promise<InfillCase[]> {
  const lines = file.text.split("\n");
  const code = codeParts(lines, file.language);
  const minDepthChars = (await model.detokenize(file.tokens.subarray(0, MIN_LINE_DEPTH_TOKENS + 1))).length;
  // A removed line needs text after it, or the infill has no suffix.
  let lastTextLine = lines.length - 1;
  while (lastTextLine > 0 && lines[lastTextLine].trim() === "") --lastTextLine;
  const eligible: number[] = [];
  for (let index = 0, start = 0; index < lastTextLine; start += lines[index].length + 1, ++index) {
    if (start >= minDepthChars && code[index].replace(/\s/g, "").length >= MIN_LINE_CHARS) eligible.push(index);
  }
  const taken = Math.min(count, eligible.length);
  const picked = Array.from({ length: taken }, (_, k) => eligible[Math.floor(((k + 0.5) * eligible.length) / taken)]);
  const cases: InfillCase[] = [];
  for (const index of picked) {
    const suffix = await leadingLinesWithin(model, lines.slice(index + 1), INFILL_SUFFIX_TOKENS);
    const promptLength = async (from: number) =>
      (await prompter.promptTokens({ infill: { prefix: joinLines(lines.slice(from, index)), suffix, format: "spm" } })).length;
    // The prompt shrinks as the prefix starts later: find the earliest start line that fits.
    let low = 0;
    let high = index;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if ((await promptLength(middle)) <= INFILL_PROMPT_TOKENS) high = middle;
      else low = middle + 1;
    }
    cases.push({ line: lines[index], prefix: joinLines(lines.slice(low, index)), suffix });
  }
  return cases;
}

/** Lines followed by their newlines: the text a prefix or suffix made of whole lines holds. */
function joinLines(lines: string[]): string {
  return lines.map((line) => `${line}\n`).join("");
}

/** The longest run of leading lines (at least one) whose text stays within `budget` tokens. */
async function leadingLinesWithin(model: Model, lines: string[], budget: number): Promise<string> {
  let taken = 1;
  while (taken < lines.length) {
    const tokens = await model.tokenize(joinLines(lines.slice(0, taken + 1)), { addBos: false, leadingSpace: false });
    if (tokens.length > budget) break;
    ++taken;
  }
  return joinLines(lines.slice(0, taken));
}

function kvRatioOf(kv: { bytes: number; fullBytes: number }): number {
  return kv.bytes / kv.fullBytes;
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Geometric mean of the files' perplexities of tokens [SCORED_CONTEXT, CONTEXT_SIZE), each scored from its prefix. */
async function measurePerplexity(model: Model, files: SourceFile[], kv: KvPolicyOptions): Promise<Measured<number>> {
  // logProbs starts from an empty cache every time, so one session serves every file.
  const session = await model.createSession({ contextSize: CONTEXT_SIZE, threads: THREADS, kv });
  const meanNll: number[] = [];
  const kvRatios: number[] = [];
  for (const file of files) {
    const logProbs = await session.logProbs(file.tokens.subarray(0, CONTEXT_SIZE), SCORED_CONTEXT);
    meanNll.push(-mean(Array.from(logProbs)));
    kvRatios.push(kvRatioOf(session.kvStats()));
  }
  session.dispose();
  return { value: Math.exp(mean(meanNll)), kvRatio: mean(kvRatios) };
}

function infillPrompt(prefix: string, suffix: string) {
  return { infill: { prefix, suffix, format: "spm" as const } };
}

const GREEDY_LINE = { maxTokens: COMPLETION_TOKENS, stop: ["\n"] };

/** Runs one request on a new session: a session would otherwise reuse the previous case's leading tokens. */
async function freshGenerate(model: Model, kv: KvPolicyOptions, prefix: string, suffix: string): Promise<GenerateResult> {
  const session = await model.createSession({ contextSize: CONTEXT_SIZE, threads: THREADS, kv });
  try {
    return await session.generate(infillPrompt(prefix, suffix), GREEDY_LINE);
  } finally {
    session.dispose();
  }
}

async function measureInfill(model: Model, cases: InfillCase[], kv: KvPolicyOptions): Promise<Measured<string[]>> {
  const completions: string[] = [];
  const kvRatios: number[] = [];
  for (const infillCase of cases) {
    const result = await freshGenerate(model, kv, infillCase.prefix, infillCase.suffix);
    completions.push(result.text);
    kvRatios.push(kvRatioOf(result.kv));
  }
  return { value: completions, kvRatio: mean(kvRatios) };
}

async function measurePolicy(
  model: Model,
  files: SourceFile[],
  cases: InfillCase[],
  row: Omit<PolicyRow, "perplexity" | "infill">,
): Promise<PolicyRow> {
  const kvFor = (targetRatio: number | undefined): KvPolicyOptions => ({ policy: row.policy, ...(targetRatio === undefined ? {} : { targetRatio }) });
  const measured = {
    ...row,
    perplexity: await measurePerplexity(model, files, kvFor(row.targetRatio.perplexity)),
    infill: await measureInfill(model, cases, kvFor(row.targetRatio.infill)),
  };
  console.error(
    `${row.label}: perplexity ${measured.perplexity.value.toFixed(2)} (KV ${percent(measured.perplexity.kvRatio)}), ` +
      `infill KV ${percent(measured.infill.kvRatio)}`,
  );
  return measured;
}

interface ReuseRow {
  label: string;
  cases: number;
  /** Means over requests B on the reused session: tokens found in the cache, of the prompt's. */
  reusedTokens: number;
  promptTokens: number;
  sameCompletion: number;
  kvBytes: { reuse: number; fresh: number };
  promptMs: { reuse: number; fresh: number };
}

/**
 * Typing: request A is the case's infill; request B appends the first half of the removed line to the prefix, which
 * SPM puts at the end of the prompt. B runs on the session that just served A (its prefix reused, with the selection
 * made for A: A's recent window kept whole, its dropped tokens staying dropped) and on a fresh session.
 */
async function measureReuse(model: Model, cases: InfillCase[], kv: KvPolicyOptions): Promise<ReuseRow> {
  const reused: GenerateResult[] = [];
  const fresh: GenerateResult[] = [];
  for (const infillCase of cases) {
    const typed = infillCase.prefix + infillCase.line.slice(0, Math.floor(infillCase.line.length / 2));
    const session = await model.createSession({ contextSize: CONTEXT_SIZE, threads: THREADS, kv });
    await session.generate(infillPrompt(infillCase.prefix, infillCase.suffix), GREEDY_LINE);
    reused.push(await session.generate(infillPrompt(typed, infillCase.suffix), GREEDY_LINE));
    session.dispose();
    fresh.push(await freshGenerate(model, kv, typed, infillCase.suffix));
  }
  if (reused.some((r) => r.timings.reusedTokens === 0)) throw new Error(`${policyLabel(kv)}: a typed request reused nothing of the previous one`);
  const row: ReuseRow = {
    label: policyLabel(kv),
    cases: cases.length,
    reusedTokens: mean(reused.map((r) => r.timings.reusedTokens)),
    promptTokens: mean(reused.map((r) => r.timings.promptTokens)),
    sameCompletion: reused.filter((r, i) => r.text === fresh[i].text).length,
    kvBytes: { reuse: mean(reused.map((r) => r.kv.bytes)), fresh: mean(fresh.map((r) => r.kv.bytes)) },
    promptMs: { reuse: mean(reused.map((r) => r.timings.promptMs)), fresh: mean(fresh.map((r) => r.timings.promptMs)) },
  };
  console.error(`reuse ${row.label}: ${row.sameCompletion}/${row.cases} identical to fresh, ${row.reusedTokens.toFixed(1)} of ${row.promptTokens.toFixed(1)} prompt tokens reused`);
  return row;
}

function percent(share: number): string {
  return `${(100 * share).toFixed(1)}%`;
}

function countShare(count: number, total: number): string {
  return `${count}/${total} (${percent(count / total)})`;
}

/** How many of a row's completions equal the full cache's (rows[0]) and the removed line. */
function infillAgreement(row: PolicyRow, full: PolicyRow, cases: InfillCase[]) {
  return {
    sameAsFull: row.infill.value.filter((text, i) => text === full.infill.value[i]).length,
    sameAsLine: row.infill.value.filter((text, i) => text === cases[i].line).length,
  };
}

function formatQualityTable(rows: PolicyRow[], cases: InfillCase[]): string {
  const full = rows[0];
  const target = (row: PolicyRow) => {
    const { perplexity, infill } = row.targetRatio;
    if (perplexity === undefined || infill === undefined) return "-";
    return perplexity === infill ? perplexity.toFixed(3) : `${perplexity.toFixed(3)} / ${infill.toFixed(3)}`;
  };
  const lines = [
    "| policy | targetRatio (ppl / infill) | KV ratio, perplexity | KV ratio, infill | perplexity | vs full | infill = full | infill = removed line |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const { sameAsFull, sameAsLine } = infillAgreement(row, full, cases);
    const change = row.perplexity.value / full.perplexity.value - 1;
    lines.push(
      `| ${row.label} | ${target(row)} | ${percent(row.perplexity.kvRatio)} | ${percent(row.infill.kvRatio)} | ` +
        `${row.perplexity.value.toFixed(2)} | ${change >= 0 ? "+" : ""}${percent(change)} | ` +
        `${countShare(sameAsFull, cases.length)} | ${countShare(sameAsLine, cases.length)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * What pyramid's target ratio solved to for an infill prompt: an unreachable target leaves it at its floor, with the
 * decay at 0 and the recent window shrunk (to nothing at the floor), which the table's rows alone do not show.
 */
function formatPyramidPlans(plans: PyramidPlan[]): string {
  return plans
    .map(
      ({ targetRatio, plan }) =>
        `- pyramid@${targetRatio} on a ${INFILL_PROMPT_TOKENS}-token prompt: decay ${plan.config.decayRatio.toFixed(2)}, ` +
        `recent window ${plan.config.recentRatio.toFixed(2)}, prefill KV ${percent(plan.ratio)} ` +
        `(per layer ${plan.perLayer.map((layer) => layer.tokens).join(", ")})`,
    )
    .join("\n");
}

function formatReuseTable(rows: ReuseRow[]): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const lines = [
    "| policy | cases | reused / prompt tokens (mean) | B on reused cache = B fresh | KV, reused | KV, fresh | prompt ms, reused | prompt ms, fresh |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.label} | ${row.cases} | ${row.reusedTokens.toFixed(1)} / ${row.promptTokens.toFixed(1)} | ${countShare(row.sameCompletion, row.cases)} | ` +
        `${kib(row.kvBytes.reuse)} | ${kib(row.kvBytes.fresh)} | ${row.promptMs.reuse.toFixed(1)} | ${row.promptMs.fresh.toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      files: { type: "string", default: "12" },
      lines: { type: "string", default: "8" },
      json: { type: "boolean", default: false },
    },
  });
  const fileCount = Number(values.files);
  const linesPerFile = Number(values.lines);
  if (!(fileCount >= 1 && linesPerFile >= 1)) throw new Error("--files and --lines take a count of at least 1");
  const started = performance.now();
  // Another model (one that uses long context) needs no other change; keep its windows within its training length.
  const modelPath = values.model ?? demoModelPath();
  const model = await Model.load(modelPath);
  const files = await loadHeldOutFiles(model, fileCount);
  const prompter = await model.createSession({ contextSize: CONTEXT_SIZE, threads: THREADS });
  const cases: InfillCase[] = [];
  for (const file of files) {
    const fileCases = await infillCases(model, prompter, file, linesPerFile);
    console.error(`${file.path}: ${file.tokens.length} tokens, ${fileCases.length} infill cases`);
    cases.push(...fileCases);
  }
  prompter.dispose();

  const rows: PolicyRow[] = [
    await measurePolicy(model, files, cases, { label: "full", policy: "full", nominalRatio: 1, targetRatio: {} }),
  ];
  for (const nominalRatio of NOMINAL_RATIOS) {
    const nominal = { perplexity: nominalRatio, infill: nominalRatio };
    const byPolicy = new Map<KvPolicyName, PolicyRow>();
    for (const policy of COMPRESSING_POLICIES) {
      const row = await measurePolicy(model, files, cases, { label: `${policy}@${nominalRatio}`, policy, nominalRatio, targetRatio: nominal });
      byPolicy.set(policy, row);
      rows.push(row);
    }
    // Pyramid's budget is set for the prefill and grows in decode; streaming and h2o hold theirs at every step.
    // Equal budget therefore means the ratio pyramid actually ended at, per task.
    const pyramid = byPolicy.get("pyramid")!;
    const matched = { perplexity: pyramid.perplexity.kvRatio, infill: pyramid.infill.kvRatio };
    for (const policy of BUDGET_MATCHED_POLICIES) {
      rows.push(
        await measurePolicy(model, files, cases, { label: `${policy} (matched to pyramid@${nominalRatio})`, policy, nominalRatio, targetRatio: matched }),
      );
    }
  }
  const reuseRows: ReuseRow[] = [];
  for (const kv of REUSE_POLICIES) reuseRows.push(await measureReuse(model, cases, kv));
  const pyramidPlans = NOMINAL_RATIOS.map((targetRatio) => ({ targetRatio, plan: model.planKv(INFILL_PROMPT_TOKENS, { policy: "pyramid", targetRatio }) }));
  model.dispose();
  console.error(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const results = { modelPath, files, cases, rows, reuseRows, pyramidPlans };
  if (values.json) printJson(results);
  else printMarkdown(results);
}

interface PyramidPlan {
  targetRatio: number;
  plan: KvPlan;
}

interface Results {
  modelPath: string;
  files: SourceFile[];
  cases: InfillCase[];
  rows: PolicyRow[];
  reuseRows: ReuseRow[];
  pyramidPlans: PyramidPlan[];
}

function printJson({ files, cases, rows, reuseRows, pyramidPlans }: Results): void {
  for (const row of rows) {
    const agreement = infillAgreement(row, rows[0], cases);
    console.log(
      JSON.stringify({
        table: "quality",
        label: row.label,
        policy: row.policy,
        nominal_ratio: row.nominalRatio,
        target_ratio_perplexity: row.targetRatio.perplexity ?? null,
        target_ratio_infill: row.targetRatio.infill ?? null,
        kv_ratio_perplexity: row.perplexity.kvRatio,
        kv_ratio_infill: row.infill.kvRatio,
        perplexity: row.perplexity.value,
        files: files.length,
        infill_cases: cases.length,
        infill_same_as_full: agreement.sameAsFull,
        infill_same_as_line: agreement.sameAsLine,
      }),
    );
  }
  for (const { targetRatio, plan } of pyramidPlans) {
    console.log(
      JSON.stringify({
        table: "pyramid_plan",
        target_ratio: targetRatio,
        prompt_tokens: INFILL_PROMPT_TOKENS,
        decay_ratio: plan.config.decayRatio,
        recent_ratio: plan.config.recentRatio,
        kv_ratio: plan.ratio,
        layer_tokens: plan.perLayer.map((layer) => layer.tokens),
      }),
    );
  }
  for (const row of reuseRows) {
    console.log(
      JSON.stringify({
        table: "reuse",
        label: row.label,
        cases: row.cases,
        reused_tokens: row.reusedTokens,
        prompt_tokens: row.promptTokens,
        same_completion: row.sameCompletion,
        kv_bytes_reused: row.kvBytes.reuse,
        kv_bytes_fresh: row.kvBytes.fresh,
        prompt_ms_reused: row.promptMs.reuse,
        prompt_ms_fresh: row.promptMs.fresh,
      }),
    );
  }
}

function printMarkdown({ modelPath, files, cases, rows, reuseRows, pyramidPlans }: Results): void {
  console.log(
    `${path.basename(modelPath)}, ${files.length} files (${files.map((f) => f.name).join(", ")}), ` +
      `${cases.length} infill cases, ${THREADS} threads\n`,
  );
  console.log(formatQualityTable(rows, cases));
  console.log();
  console.log(formatPyramidPlans(pyramidPlans));
  console.log();
  console.log(formatReuseTable(reuseRows));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
