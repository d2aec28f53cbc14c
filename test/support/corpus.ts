// A deterministic corpus of real source text for tokenizer parity: files taken from what every machine that ran
// `npm install` has (node_modules, the C++ standard headers, Python's standard library), several languages,
// localised (non-ASCII) messages, CRLF copies, and hand-written edge cases (emoji, tabs, whitespace runs).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

export interface CorpusDocument {
  name: string;
  text: string;
}

const ROOT = path.resolve(__dirname, "../..");

function filesUnder(dir: string, accept: (name: string) => boolean, depth = 3): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const full = path.join(dir, entry);
    const stat = statSync(full);
    if (stat.isDirectory()) {
      if (depth > 0 && entry !== "node_modules" && !entry.startsWith(".")) found.push(...filesUnder(full, accept, depth - 1));
    } else if (stat.isFile() && accept(entry)) {
      found.push(full);
    }
  }
  return found;
}

// Takes whole files in order until `budget` bytes, skipping files larger than a quarter of it so that one file
// cannot stand for a whole language.
function take(label: string, files: string[], budget: number): CorpusDocument[] {
  const documents: CorpusDocument[] = [];
  let used = 0;
  for (const file of files) {
    const size = statSync(file).size;
    if (size > budget / 4 || size === 0) continue;
    if (used + size > budget) break;
    documents.push({ name: `${label}:${path.relative(ROOT, file)}`, text: readFileSync(file, "utf8") });
    used += size;
  }
  return documents;
}

function firstLines(text: string, maxBytes: number): string {
  const kept: string[] = [];
  let bytes = 0;
  for (const line of text.split("\n")) {
    bytes += Buffer.byteLength(line, "utf8") + 1;
    if (bytes > maxBytes) break;
    kept.push(line + "\n");
  }
  return kept.join("");
}

function pythonStdlib(): string | undefined {
  try {
    return execFileSync("python3", ["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

export const EDGE_CASES: string[] = [
  "",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "   leading spaces",
  "trailing spaces   ",
  "tabs\tbetween\t\twords\t",
  "a" + " ".repeat(200) + "b",
  "\t".repeat(40) + "deep();",
  "line one\r\nline two\r\n\r\n\tindented\r\n",
  "emoji: 😀 🚀 👩‍💻 🏳️‍🌈 ❤️ 👍🏽",
  "中文注释：计算斐波那契数列", "日本語のコメント：ファイルを読み込む", "한국어 주석", "Русский комментарий: функция",
  "Ελληνικά: συνάρτηση", "עברית: פונקציה", "العربية: دالة", "हिन्दी टिप्पणी", "ไทย ความคิดเห็น",
  "combining: é (e\u0301) ñ (n\u0303) ǅ", "zero width: a\u200bb\u200dc\ufeffd", "math: ∀x∈ℝ, ∑ᵢ xᵢ² ≥ 0 → √",
  "box drawing: ┌─┬─┐ │ │ └─┴─┘", "\u2581already escaped\u2581space", "<unused32000> user-defined <unused32015>",
  "<s> not special unless parsed </s>", "\u2581<PRE> \u2581<SUF> \u2581<MID> \u2581<EOT>", "<0x0A> is text here",
  "def f(x):\n    return {'a': [1, 2, 3]}  # dict\n", "fn main() { println!(\"{}\", 42u64); }\n",
  "#include <stdio.h>\nint main(void){printf(\"%d\\n\",0x7fffffff);}\n", "SELECT * FROM t WHERE id = 1;\n",
  "x".repeat(1000), "ab".repeat(500), "\u{10FFFF}\u{1F9EA}\u{E000}", "¡¿ «» „“ ‚‘ … – — ·",
];

export function parityCorpus(): CorpusDocument[] {
  const nm = path.join(ROOT, "node_modules");
  const documents: CorpusDocument[] = [
    ...take("c++", filesUnder("/usr/include/c++/12/bits", (n) => n.endsWith(".h") || n.endsWith(".tcc")), 450_000),
    ...take("typescript", filesUnder(path.join(nm, "@types/node"), (n) => n.endsWith(".d.ts")), 450_000),
    ...take("javascript", filesUnder(path.join(nm, "vitest/dist"), (n) => n.endsWith(".js")), 350_000),
    ...take("markdown", filesUnder(nm, (n) => n === "README.md", 2), 250_000),
  ];
  const stdlib = pythonStdlib();
  if (stdlib) documents.push(...take("python", filesUnder(stdlib, (n) => n.endsWith(".py"), 0), 450_000));
  // Non-ASCII prose: TypeScript's localised compiler messages, the first lines of each locale's file.
  for (const locale of ["ja", "zh-cn", "ko", "ru", "de", "pl"]) {
    const file = path.join(nm, "typescript/lib", locale, "diagnosticMessages.generated.json");
    if (existsSync(file)) documents.push({ name: `messages-${locale}`, text: firstLines(readFileSync(file, "utf8"), 80_000) });
  }
  // CRLF line endings: the same C++ and Python text as written on Windows.
  for (const label of ["c++:", "python:"]) {
    for (const document of documents.filter((d) => d.name.startsWith(label)).slice(0, 6)) {
      documents.push({ name: `crlf-${document.name}`, text: document.text.replace(/\n/g, "\r\n") });
    }
  }
  EDGE_CASES.forEach((text, index) => documents.push({ name: `edge-case-${index}`, text }));
  return documents;
}

export function corpusBytes(documents: CorpusDocument[]): number {
  return documents.reduce((sum, d) => sum + Buffer.byteLength(d.text, "utf8"), 0);
}
