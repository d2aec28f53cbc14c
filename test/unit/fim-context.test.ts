// The FIM windows around the cursor: what they hold, and that their outer edges stay put while the user types, presses
// Enter or Backspace near the cursor (the engine's prefix reuse of SPM prompts depends on it); trimming to a token
// budget in whole chunks.
import llamaTokenizer from "llama-tokenizer-js";
import { describe, expect, it } from "vitest";

import {
  extractFimContext,
  roughTokenCount,
  trimFimContextToBudget,
  trimPrefixToBudget,
  type FimContext,
} from "../../extension/core/fim-context";

/** A file of n numbered lines, "L0".."L<n-1>", joined with eol (no final line break unless finalEol). */
function numberedLines(n: number, eol = "\n", finalEol = false): string {
  return Array.from({ length: n }, (_, i) => `L${i}`).join(eol) + (finalEol ? eol : "");
}

/** The offset of a 0-based line and character, for checks independent of the implementation. */
function offsetOf(text: string, line: number, character: number): number {
  let offset = 0;
  for (let i = 0; i < line; i++) offset = text.indexOf("\n", offset) + 1;
  return offset + character;
}

/** Applies an edit at an offset and returns the new text and the cursor's line and character after it. */
function typeAt(text: string, offset: number, typed: string): { text: string; line: number; character: number } {
  const next = text.slice(0, offset) + typed + text.slice(offset);
  const before = next.slice(0, offset + typed.length);
  const line = before.split("\n").length - 1;
  return { text: next, line, character: before.length - before.lastIndexOf("\n") - 1 };
}

describe("extractFimContext", () => {
  const PY = [
    "import os",
    "",
    "def read_config(path):",
    "    with open(path) as f:",
    "        return f.read()",
    "",
    "def main():",
    "    config = read_config(os.environ['CONFIG'])",
    "    print(config)",
    "",
  ].join("\n");

  it("splits at the cursor when the windows cover the whole file", () => {
    const context = extractFimContext(PY, 7, 13, { linesBefore: 100, linesAfter: 100 });
    const cursor = offsetOf(PY, 7, 13);
    expect(context).toEqual({ prefix: PY.slice(0, cursor), suffix: PY.slice(cursor), prefixStartLine: 0, suffixEndLine: 9 });
    expect(context.prefix.endsWith("    config = ")).toBe(true);
    expect(context.suffix.startsWith("read_config(os.environ['CONFIG'])\n    print(config)")).toBe(true);
    expect(context.prefix + context.suffix).toBe(PY);
  });

  it("holds at least linesBefore/linesAfter whole lines, aligned to chunkLines, counted from the top and the bottom", () => {
    const text = numberedLines(200);
    const context = extractFimContext(text, 100, 2, { linesBefore: 20, linesAfter: 10, chunkLines: 16 });
    // Start: floor((100 - 20) / 16) * 16 = 80. End: 99 lines below the cursor, floor((99 - 10) / 16) * 16 = 80 of them
    // stay outside, so the last line is 199 - 80 = 119.
    expect(context.prefixStartLine).toBe(80);
    expect(context.suffixEndLine).toBe(119);
    expect(context.prefix).toBe(text.slice(offsetOf(text, 80, 0), offsetOf(text, 100, 2)));
    expect(context.suffix).toBe(text.slice(offsetOf(text, 100, 2), offsetOf(text, 120, 0)));
    expect(context.prefix.startsWith("L80\n")).toBe(true);
    // The suffix ends with its last line's line break.
    expect(context.suffix.endsWith("L119\n")).toBe(true);
  });

  it("bounds the windows: at least the lines asked for, fewer than that plus a chunk", () => {
    const text = numberedLines(300);
    for (const chunkLines of [1, 7, 32]) {
      for (let line = 0; line < 300; line += 13) {
        const { prefixStartLine, suffixEndLine } = extractFimContext(text, line, 1, { linesBefore: 40, linesAfter: 25, chunkLines });
        expect(prefixStartLine % chunkLines).toBe(0);
        expect(line - prefixStartLine).toBeGreaterThanOrEqual(Math.min(40, line));
        expect(line - prefixStartLine).toBeLessThan(40 + chunkLines);
        expect((299 - suffixEndLine) % chunkLines).toBe(0);
        expect(suffixEndLine - line).toBeGreaterThanOrEqual(Math.min(25, 299 - line));
        expect(suffixEndLine - line).toBeLessThan(25 + chunkLines);
      }
    }
  });

  it("gives exact windows with chunkLines 1", () => {
    const text = numberedLines(50);
    const context = extractFimContext(text, 20, 0, { linesBefore: 3, linesAfter: 2, chunkLines: 1 });
    expect(context.prefix).toBe("L17\nL18\nL19\n");
    expect(context.suffix).toBe("L20\nL21\nL22\n");
    expect(context).toMatchObject({ prefixStartLine: 17, suffixEndLine: 22 });
  });

  it("keeps both window edges while the user types a line, presses Enter and deletes near the cursor", () => {
    let text = numberedLines(400, "\n", true);
    const limits = { linesBefore: 64, linesAfter: 32, chunkLines: 32 };
    let { line, character } = { line: 200, character: 4 };
    const first = extractFimContext(text, line, character, limits);
    const startText = text.slice(offsetOf(text, first.prefixStartLine, 0), offsetOf(text, first.prefixStartLine + 1, 0));
    let previous = first;
    const keystrokes = ["    x", " = foo(", "a, b)", "\n", "    ", "return x", "\n", "\n", "y"];
    for (const typed of keystrokes) {
      for (const char of typed) {
        ({ text, line, character } = typeAt(text, offsetOf(text, line, character), char));
        const context = extractFimContext(text, line, character, limits);
        // The suffix is text-identical, and the new prefix extends the old one: only appended tokens to evaluate.
        expect(context.suffix).toBe(first.suffix);
        expect(context.prefix.startsWith(previous.prefix)).toBe(true);
        expect(context.prefixStartLine).toBe(first.prefixStartLine);
        previous = context;
      }
    }
    expect(previous.prefix.startsWith(startText)).toBe(true);
    // Backspace: the prefix shrinks at its end only.
    const offset = offsetOf(text, line, character);
    text = text.slice(0, offset - 1) + text.slice(offset);
    character--;
    const afterBackspace = extractFimContext(text, line, character, limits);
    expect(afterBackspace.suffix).toBe(first.suffix);
    expect(previous.prefix.startsWith(afterBackspace.prefix)).toBe(true);
  });

  it("moves the prefix start only in chunk steps as the cursor goes down the file", () => {
    const text = numberedLines(500);
    const moves: Array<[number, number]> = [];
    let start = extractFimContext(text, 100, 0, { linesBefore: 50, linesAfter: 20 }).prefixStartLine;
    for (let line = 101; line < 164; line++) {
      const next = extractFimContext(text, line, 0, { linesBefore: 50, linesAfter: 20 }).prefixStartLine;
      if (next !== start) moves.push([line, next]);
      start = next;
    }
    expect(moves).toEqual([
      [114, 64],
      [146, 96],
    ]);
  });

  it("handles the cursor at the start and at the end of the file", () => {
    const text = "int main(void) {\n  return 0;\n}\n";
    const atStart = extractFimContext(text, 0, 0, { linesBefore: 10, linesAfter: 10 });
    expect(atStart).toEqual({ prefix: "", suffix: text, prefixStartLine: 0, suffixEndLine: 3 });
    // After the final line break is line 3, empty.
    const atEnd = extractFimContext(text, 3, 0, { linesBefore: 10, linesAfter: 10 });
    expect(atEnd).toEqual({ prefix: text, suffix: "", prefixStartLine: 0, suffixEndLine: 3 });
    const noFinalBreak = "x = 1\ny = 2";
    expect(extractFimContext(noFinalBreak, 1, 5, { linesBefore: 0, linesAfter: 0 })).toEqual({
      prefix: noFinalBreak,
      suffix: "",
      prefixStartLine: 0,
      suffixEndLine: 1,
    });
  });

  it("handles an empty file", () => {
    expect(extractFimContext("", 0, 0, { linesBefore: 5, linesAfter: 5 })).toEqual({
      prefix: "",
      suffix: "",
      prefixStartLine: 0,
      suffixEndLine: 0,
    });
  });

  it("keeps CRLF line breaks and never puts the cursor between \\r and \\n", () => {
    const text = numberedLines(100, "\r\n", true);
    const context = extractFimContext(text, 50, 3, { linesBefore: 5, linesAfter: 5, chunkLines: 4 });
    expect(context.prefixStartLine).toBe(44);
    expect(context.prefix).toBe("L44\r\nL45\r\nL46\r\nL47\r\nL48\r\nL49\r\nL50");
    // 49 lines below line 50 (the last, line 100, is empty): floor((49 - 5) / 4) * 4 = 44 stay outside.
    expect(context.suffixEndLine).toBe(56);
    expect(context.suffix).toBe("\r\nL51\r\nL52\r\nL53\r\nL54\r\nL55\r\nL56\r\n");
    expect(() => extractFimContext(text, 50, 4, { linesBefore: 5, linesAfter: 5 })).toThrow(RangeError);
  });

  it("keeps tabs as they are", () => {
    const text = "func main() {\n\tif ok {\n\t\tfmt.Println(\"hi\")\n\t}\n}\n";
    const context = extractFimContext(text, 2, 2, { linesBefore: 1, linesAfter: 1, chunkLines: 1 });
    expect(context).toEqual({ prefix: "\tif ok {\n\t\t", suffix: "fmt.Println(\"hi\")\n\t}\n", prefixStartLine: 1, suffixEndLine: 3 });
  });

  it("counts characters in UTF-16 code units, as VS Code does", () => {
    const text = "s = '😀é'\nprint(s)";
    const context = extractFimContext(text, 0, 7, { linesBefore: 0, linesAfter: 0 });
    expect(context.prefix).toBe("s = '😀");
    expect(context.suffix).toBe("é'\nprint(s)");
  });

  it("rejects positions outside the text and bad limits", () => {
    const text = "a\nbc";
    expect(() => extractFimContext(text, 2, 0, { linesBefore: 1, linesAfter: 1 })).toThrow(/line 2 is outside/);
    expect(() => extractFimContext(text, -1, 0, { linesBefore: 1, linesAfter: 1 })).toThrow(RangeError);
    expect(() => extractFimContext(text, 1, 3, { linesBefore: 1, linesAfter: 1 })).toThrow(/character 3 is outside line 1/);
    expect(() => extractFimContext(text, 0, 0.5, { linesBefore: 1, linesAfter: 1 })).toThrow(RangeError);
    expect(() => extractFimContext(text, 0, 0, { linesBefore: -1, linesAfter: 1 })).toThrow(/linesBefore/);
    expect(() => extractFimContext(text, 0, 0, { linesBefore: 1, linesAfter: 1, chunkLines: 0 })).toThrow(/chunkLines/);
  });

  it("is fast enough for every keystroke in a 2,000-line file", () => {
    const text = Array.from({ length: 2000 }, (_, i) => `    const value${i} = compute(${i}, "some text here");`).join("\n");
    const started = performance.now();
    for (let i = 0; i < 200; i++) extractFimContext(text, 1000 + (i % 50), 10, { linesBefore: 256, linesAfter: 64 });
    expect((performance.now() - started) / 200).toBeLessThan(5);
  });
});

describe("trimPrefixToBudget", () => {
  const prefix = numberedLines(100) + "\n    ret"; // 100 full lines, then the cursor's line

  it("returns the prefix unchanged within budget", () => {
    expect(trimPrefixToBudget(prefix, 0)).toBe(prefix);
    expect(trimPrefixToBudget(prefix, -5)).toBe(prefix);
  });

  it("drops whole chunks of leading lines until the removed estimate covers the excess", () => {
    const perLine = () => 1; // chunks of 32 lines, one token a line
    const calls: string[] = [];
    const estimate = (s: string) => {
      calls.push(s);
      return s.split("\n").length - 1;
    };
    expect(trimPrefixToBudget(prefix, 1, estimate)).toBe(prefix.slice(offsetOf(prefix, 32, 0)));
    expect(trimPrefixToBudget(prefix, 32, estimate)).toBe(prefix.slice(offsetOf(prefix, 32, 0)));
    expect(trimPrefixToBudget(prefix, 33, estimate)).toBe(prefix.slice(offsetOf(prefix, 64, 0)));
    expect(trimPrefixToBudget(prefix, 70, estimate, { chunkLines: 10 })).toBe(prefix.slice(offsetOf(prefix, 70, 0)));
    expect(trimPrefixToBudget(prefix, 5, perLine, { chunkLines: 1 })).toBe(prefix.slice(offsetOf(prefix, 5, 0)));
    // The estimate sees each dropped chunk once.
    expect(calls.every((chunk) => chunk.endsWith("\n"))).toBe(true);
  });

  it("never cuts into the cursor's line, even far over budget", () => {
    expect(trimPrefixToBudget(prefix, 1e9)).toBe("    ret");
    expect(trimPrefixToBudget("    ret", 1e9)).toBe("    ret");
    expect(trimPrefixToBudget("a\nb\n", 1e9)).toBe("");
    // The last chunk stops at the cursor's line.
    expect(trimPrefixToBudget("a\nb\nc\nxyz", 1e9, () => 0, { chunkLines: 2 })).toBe("xyz");
  });

  it("keeps CRLF line breaks whole", () => {
    const crlf = "a\r\nb\r\nc\r\nd";
    expect(trimPrefixToBudget(crlf, 1, () => 1, { chunkLines: 2 })).toBe("c\r\nd");
  });

  it("keeps the same start while the prefix grows by a few tokens", () => {
    const file = Array.from({ length: 400 }, (_, i) => `    total += values[${i}] * weights[${i}];`).join("\n") + "\n";
    const results = new Set<string>();
    for (let typed = 0; typed < 20; typed++) {
      const grown = file + "    x".repeat(typed);
      results.add(trimPrefixToBudget(grown, 1000 + Math.floor(typed / 4)).slice(0, 40));
    }
    expect(results.size).toBe(1);
  });

  it("trims a FimContext and moves its start line by whole chunks", () => {
    const text = numberedLines(300);
    const context: FimContext = extractFimContext(text, 200, 1, { linesBefore: 150, linesAfter: 10 });
    expect(context.prefixStartLine).toBe(32);
    const trimmed = trimFimContextToBudget(context, 40, (s) => s.split("\n").length - 1);
    expect(trimmed.prefixStartLine).toBe(96);
    expect(trimmed.prefix).toBe(text.slice(offsetOf(text, 96, 0), offsetOf(text, 200, 1)));
    expect(trimmed.suffix).toBe(context.suffix);
    expect(trimFimContextToBudget(context, 0)).toBe(context);
  });
});

describe("roughTokenCount", () => {
  it("counts about four characters a token, indentation runs as one", () => {
    expect(roughTokenCount("")).toBe(0);
    expect(roughTokenCount("abcd")).toBe(1);
    expect(roughTokenCount("abcde")).toBe(2);
    expect(roughTokenCount("                return")).toBe(roughTokenCount(" return"));
  });

  it("counts no more than LLaMA's tokenizer on real code (so trimming removes at least enough)", () => {
    const snippets = [
      "    config = read_config(os.environ['CONFIG'])\n",
      "                return x\n",
      "    total += values[12] * weights[12];\n",
      "int main(void) {\n  return 0;\n}\n",
      "export function add(a: number, b: number): number {\n\treturn a + b;\n}\n",
      "#include <stdio.h>\n\nstatic const char *names[] = {\"alpha\", \"beta\"};\n",
    ];
    for (const snippet of snippets) {
      const real = llamaTokenizer.encode(snippet, false, false).length;
      expect(roughTokenCount(snippet)).toBeLessThanOrEqual(real);
      expect(roughTokenCount(snippet)).toBeGreaterThanOrEqual(real / 3);
    }
  });
});
