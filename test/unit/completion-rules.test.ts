// Single- vs multi-line choice, stop rules while tokens stream, and post-processing of finished completions, on
// Python, TypeScript, C and Go snippets.
import { describe, expect, it } from "vitest";

import {
  decideMultiline,
  indentWidth,
  opensBlock,
  postProcess,
  StopRules,
  type PostProcessContext,
  type StopRulesOptions,
} from "../../extension/core/completion-rules";

/** Splits a snippet at its "|" into the parts the rules take. */
function at(snippet: string): { linePrefix: string; lineSuffix: string; suffix: string; cursorIndent: string } {
  const cursor = snippet.indexOf("|");
  const before = snippet.slice(0, cursor);
  const suffix = snippet.slice(cursor + 1);
  const linePrefix = before.slice(before.lastIndexOf("\n") + 1);
  const lineEnd = suffix.indexOf("\n");
  const lineSuffix = (lineEnd < 0 ? suffix : suffix.slice(0, lineEnd)).replace(/\r$/, "");
  return { linePrefix, lineSuffix, suffix, cursorIndent: /^[ \t]*/.exec(linePrefix)![0] };
}

function post(completion: string, snippet: string, multiline: boolean, languageId?: string): string | undefined {
  const { linePrefix, lineSuffix, suffix } = at(snippet);
  const context: PostProcessContext = { linePrefix, lineSuffix, suffix, multiline, languageId };
  return postProcess(completion, context);
}

/** Streams text into StopRules in pieces and returns the final decision and where it stopped. */
function stream(rules: StopRules, text: string, piece = 3): { text: string; stop: boolean; consumed: number } {
  let decision = rules.push("");
  for (let end = piece; ; end += piece) {
    const sofar = text.slice(0, Math.min(end, text.length));
    decision = rules.push(sofar);
    if (decision.stop || end >= text.length) return { ...decision, consumed: sofar.length };
  }
}

function rulesAt(snippet: string, options: Partial<StopRulesOptions> & { languageId: string }): StopRules {
  const { linePrefix, cursorIndent } = at(snippet);
  return new StopRules({ multiline: true, maxLines: 20, cursorIndent, linePrefix, ...options });
}

describe("decideMultiline", () => {
  it("goes multi-line on a blank line (the new line after an opener, or in a block's indentation)", () => {
    expect(decideMultiline("", "", "python")).toBe(true);
    expect(decideMultiline("    ", "", "python")).toBe(true);
    expect(decideMultiline("\t\t", "", "go")).toBe(true);
    expect(decideMultiline("  ", "}", "typescript")).toBe(true);
  });

  it("goes multi-line right after a block opener", () => {
    expect(decideMultiline("function parse(text: string) {", "", "typescript")).toBe(true);
    expect(decideMultiline("function parse(text: string) {", "}", "typescript")).toBe(true);
    expect(decideMultiline("const handler = (event) => ", "", "javascript")).toBe(true);
    expect(decideMultiline("int main(void) { ", "", "c")).toBe(true);
    expect(decideMultiline("def read_config(path):", "", "python")).toBe(true);
    expect(decideMultiline("    for line in lines:  # each one", "", "python")).toBe(true);
    expect(decideMultiline("    else:", "", "python")).toBe(true);
    expect(decideMultiline("async def main():", "", "python")).toBe(true);
    expect(decideMultiline("items.each do |item|", "", "ruby")).toBe(true);
    expect(decideMultiline("if [ -f \"$file\" ]; then", "", "shellscript")).toBe(true);
  });

  it("stays on one line with code after the cursor", () => {
    expect(decideMultiline("    result = compute(", ", b)", "python")).toBe(false);
    expect(decideMultiline("    ", "return x", "python")).toBe(false);
    expect(decideMultiline("if (", " && ready) {", "c")).toBe(false);
    expect(decideMultiline("function f() {", " return 1; }", "typescript")).toBe(false);
  });

  it("allows closing brackets, quotes, `;` and `,` after the cursor", () => {
    expect(decideMultiline("    ", ")", "python")).toBe(true);
    expect(decideMultiline("const f = () => {", "};", "typescript")).toBe(true);
    expect(decideMultiline("print(\"", "\")", "python")).toBe(false); // mid-expression, not a block
  });

  it("stays on one line mid-expression, after a statement, or in a comment", () => {
    expect(decideMultiline("    config = read_", "", "python")).toBe(false);
    expect(decideMultiline("  const total = items.", "", "typescript")).toBe(false);
    expect(decideMultiline("  return x;", "", "c")).toBe(false);
    expect(decideMultiline("    x = {\"a\":", "", "python")).toBe(false); // a dict value, not a block
    expect(decideMultiline("    # TODO:", "", "python")).toBe(false);
    expect(decideMultiline("// note:", "", "typescript")).toBe(false);
    expect(decideMultiline("    value = lambda x:", "", "python")).toBe(false);
    expect(decideMultiline("render do_work", "", "ruby")).toBe(false);
  });

  it("treats `:` as an opener in Python only", () => {
    expect(opensBlock("  case 1:", "python")).toBe(true);
    expect(opensBlock("  case 1:", "c")).toBe(false);
    expect(opensBlock("while x then", "lua")).toBe(true);
    expect(opensBlock("while x then", "typescript")).toBe(false);
  });
});

describe("indentWidth", () => {
  it("counts tabs to the next tab stop", () => {
    expect(indentWidth("")).toBe(0);
    expect(indentWidth("    x")).toBe(4);
    expect(indentWidth("\t")).toBe(4);
    expect(indentWidth("  \t")).toBe(4);
    expect(indentWidth("\t  ", 8)).toBe(10);
  });
});

describe("StopRules", () => {
  it("single line: keeps the text before the first line break and stops there", () => {
    const rules = new StopRules({ multiline: false, maxLines: 5, cursorIndent: "    ", linePrefix: "    x = ", languageId: "python" });
    expect(rules.push("")).toEqual({ text: "", stop: false });
    expect(rules.push("compute(")).toEqual({ text: "compute(", stop: false });
    expect(rules.push("compute(a, b)\n    y = 2")).toEqual({ text: "compute(a, b)", stop: true });
    expect(rules.push("\nfoo")).toEqual({ text: "", stop: true });
    expect(rules.push("compute(a)\r\n")).toEqual({ text: "compute(a)\r", stop: true });
  });

  it("multi-line: stops at maxLines", () => {
    const rules = new StopRules({ multiline: true, maxLines: 3, cursorIndent: "    ", linePrefix: "    ", languageId: "python" });
    expect(rules.push("a = 1\n    b = 2\n    c = 3")).toEqual({ text: "a = 1\n    b = 2\n    c = 3", stop: false });
    expect(rules.push("a = 1\n    b = 2\n    c = 3\n")).toEqual({ text: "a = 1\n    b = 2\n    c = 3", stop: true });
    const one = new StopRules({ multiline: true, maxLines: 1, cursorIndent: "", linePrefix: "", languageId: "c" });
    expect(one.push("x++;\ny++;")).toEqual({ text: "x++;", stop: true });
  });

  it("Python, blank line in a body: stops before the line that leaves the block", () => {
    const snippet = "def area(r):\n    |\n\nprint(area(2))\n";
    const rules = rulesAt(snippet, { languageId: "python" });
    const completion = "import math\n    result = math.pi * r ** 2\n\n    return result\n\ndef perimeter(r):\n    return 2 * math.pi * r\n";
    const result = stream(rules, completion);
    expect(result).toMatchObject({ text: "import math\n    result = math.pi * r ** 2\n\n    return result\n", stop: true });
    // It stopped as soon as the dedented line showed text, not at the end.
    expect(result.consumed).toBeLessThan(completion.length);
    expect(completion.slice(0, result.consumed)).toMatch(/\nd[^\n]*$/);
  });

  it("Python, after `def ...:`: the body is what is indented deeper than the def", () => {
    const snippet = "class Stack:\n    def push(self, item):|\n";
    const rules = rulesAt(snippet, { languageId: "python" });
    const completion = "\n        self.items.append(item)\n        return self\n\n    def pop(self):\n        return self.items.pop()";
    expect(stream(rules, completion)).toMatchObject({ text: "\n        self.items.append(item)\n        return self\n", stop: true });
  });

  it("TypeScript, after `{`: keeps the line that closes the new block, once complete, and stops", () => {
    const snippet = "export function sum(values: number[]): number {|";
    const rules = rulesAt(snippet, { languageId: "typescript" });
    const completion = "\n  let total = 0;\n  for (const v of values) {\n    total += v;\n  }\n  return total;\n}\n\nexport function mean(values: number[]) {";
    expect(rules.push("\n  let total = 0;\n  for (const v of values) {\n    total += v;\n  }\n  return total;\n}")).toEqual({
      text: "\n  let total = 0;\n  for (const v of values) {\n    total += v;\n  }\n  return total;\n}",
      stop: false,
    });
    expect(stream(rules, completion, 1)).toMatchObject({ text: "\n  let total = 0;\n  for (const v of values) {\n    total += v;\n  }\n  return total;\n}", stop: true });
    // `} else {` closes the block and opens the next: the completion goes on to the closing `}`.
    const ifRules = rulesAt("  if (ready) {|", { languageId: "typescript" });
    expect(ifRules.push("\n    start();\n  } else {\n    wait();\n  }\n  done();")).toEqual({
      text: "\n    start();\n  } else {\n    wait();\n  }",
      stop: true,
    });
    const thenRules = rulesAt("fetch(url).then((response) => {|", { languageId: "javascript" });
    expect(thenRules.push("\n  return response.json();\n}).then((data) => {\n  render(data);\n});\nconsole.log(1);")).toEqual({
      text: "\n  return response.json();\n}).then((data) => {\n  render(data);\n});",
      stop: true,
    });
  });

  it("C, blank line in a body: drops the `}` of the enclosing block, which the editor already has", () => {
    const snippet = "int main(void) {\n    |\n}\n";
    const rules = rulesAt(snippet, { languageId: "c" });
    expect(stream(rules, "printf(\"hello\\n\");\n    return 0;\n}\n\nint other(void) {")).toMatchObject({
      text: "printf(\"hello\\n\");\n    return 0;",
      stop: true,
    });
  });

  it("a line without text yet does not end the block; nor do blank lines", () => {
    const rules = rulesAt("def f():\n    |", { languageId: "python" });
    expect(rules.push("x = 1\n")).toEqual({ text: "x = 1\n", stop: false });
    expect(rules.push("x = 1\n  ")).toEqual({ text: "x = 1\n  ", stop: false });
    expect(rules.push("x = 1\n\n\n    y = 2")).toEqual({ text: "x = 1\n\n\n    y = 2", stop: false });
    expect(rules.push("x = 1\n  z")).toEqual({ text: "x = 1", stop: true });
  });

  it("compares tabs and spaces by width", () => {
    const rules = new StopRules({ multiline: true, maxLines: 10, cursorIndent: "\t", linePrefix: "\t", languageId: "go", tabSize: 4 });
    expect(rules.push("x := 1\n    y := 2\n\tz := 3")).toEqual({ text: "x := 1\n    y := 2\n\tz := 3", stop: false });
    expect(rules.push("x := 1\n  y := 2")).toEqual({ text: "x := 1", stop: true });
    expect(rules.push("x := 1\n}")).toEqual({ text: "x := 1", stop: true });
  });

  it("ignores a \\r before the line break (CRLF output)", () => {
    const rules = rulesAt("int f(void) {\r\n    |", { languageId: "c" });
    expect(rules.push("int a = 1;\r\n    return a;\r\n}\r\n")).toEqual({ text: "int a = 1;\r\n    return a;\r", stop: true });
  });

  it("rejects a maxLines below 1", () => {
    expect(() => new StopRules({ multiline: true, maxLines: 0, cursorIndent: "", linePrefix: "", languageId: "c" })).toThrow(RangeError);
  });
});

describe("postProcess", () => {
  it("strips trailing whitespace and drops whitespace-only completions", () => {
    expect(post("compute(a, b)   \n\n", "x = |\n", true, "python")).toBe("compute(a, b)");
    expect(post("  \n\t\n", "x = |\n", true, "python")).toBeUndefined();
    expect(post("", "x = |\n", false, "python")).toBeUndefined();
    // Leading whitespace stays: it can be the indentation the completion needs.
    expect(post("  # note", "x = 1|\n", false, "python")).toBe("  # note");
  });

  it("cuts a single-line completion at its first line break", () => {
    expect(post("foo()\n    bar()", "    x = |\n", false, "python")).toBe("foo()");
    expect(post("\nfoo()", "    x = |\n", false, "python")).toBeUndefined();
  });

  it("balances brackets against the suffix: foo(|) with `a, b)` gives `a, b`", () => {
    expect(post("a, b)", "foo(|)", false, "typescript")).toBe("a, b");
    expect(post("a, b);", "foo(|);\nbar();", false, "typescript")).toBe("a, b");
    expect(post("x > 0) {", "if (|) {\n}", false, "c")).toBe("x > 0");
    expect(post("1, 2]", "values = [|]\n", false, "python")).toBe("1, 2");
    // A bracket the completion opens and closes itself stays.
    expect(post("bar()", "foo(|)", false, "typescript")).toBe("bar()");
    expect(post("bar(1), baz[2])", "foo(|)", false, "typescript")).toBe("bar(1), baz[2]");
    // Nothing after the cursor closes the bracket: the completion's `)` is needed.
    expect(post("a, b)", "foo(|\n", false, "typescript")).toBe("a, b)");
    // The suffix closes a different bracket: keep.
    expect(post("a)", "x = [foo(|]", false, "typescript")).toBe("a)");
    // Only the repeat of the suffix's closer is dropped.
    expect(post(")", "foo(|)", false, "typescript")).toBeUndefined();
  });

  it("ignores brackets and quotes inside strings and comments", () => {
    expect(post("\"(\", \")\")", "log(|)", false, "typescript")).toBe("\"(\", \")\"");
    expect(post("\"it's\", 1)", "print(|)", false, "python")).toBe("\"it's\", 1");
    expect(post("a  # closes )", "foo(|\n", false, "python")).toBe("a  # closes )");
    expect(post("a /* ) */, b)", "foo(|)", false, "c")).toBe("a /* ) */, b");
    // Rust lifetimes are not quotes.
    expect(post("&'a str)", "fn f(x: |)", false, "rust")).toBe("&'a str");
  });

  it("closes the cursor's string only once when the suffix closes it", () => {
    expect(post("world\")", "print(\"hello |\")", false, "python")).toBe("world");
    expect(post("world\"", "print(\"hello |\")", false, "python")).toBe("world");
    expect(post("%d\\n\", n);", "printf(\"|\");", false, "c")).toBe("%d\\n");
    // An apostrophe before the cursor in a comment is not a string.
    expect(post("a, b)", "foo(|)  // it's", false, "typescript")).toBe("a, b");
  });

  it("drops an end that repeats the rest of the cursor line", () => {
    expect(post("1;", "const x = |;", false, "typescript")).toBe("1");
    expect(post("a, b)", "foo(|, b)", false, "typescript")).toBe("a");
    expect(post("1  # seconds", "timeout = |  # seconds\n", false, "python")).toBe("1");
    expect(post("items) {", "for (const item of |) {", false, "typescript")).toBe("items");
    // The space before the repeated text is the completion's.
    expect(post("a + y", "x = |y\n", false, "python")).toBe("a + ");
    expect(post("a, b )", "foo(|)", false, "typescript")).toBe("a, b ");
    expect(post(" )", "foo(|)", false, "typescript")).toBeUndefined();
  });

  it("drops the tail that repeats the next lines of the suffix", () => {
    const ts = "function total(items: Item[]): number {\n  let sum = 0;\n  |\n  return sum;\n}\n";
    expect(post("for (const item of items) sum += item.price;\n  return sum;\n}", ts, true, "typescript")).toBe(
      "for (const item of items) sum += item.price;",
    );
    const py = "def mean(xs):\n    |\n    return total / len(xs)\n";
    expect(post("total = sum(xs)\n    return total / len(xs)", py, true, "python")).toBe("total = sum(xs)");
    // The whole completion repeats the next line: nothing to show.
    expect(post("return total / len(xs)", py, true, "python")).toBeUndefined();
    expect(post("return total / len(xs)", py, false, "python")).toBeUndefined();
  });

  it("drops the closing line of a new block when the editor already closed it on the cursor line", () => {
    expect(post("\n  return a + b;\n}", "function add(a, b) {|}\n", true, "javascript")).toBe("\n  return a + b;");
    expect(post("\n  return a + b;\n}", "function add(a, b) {|\n", true, "javascript")).toBe("\n  return a + b;\n}");
  });

  it("keeps a closing line that closes another block than the suffix's next closer (by indentation)", () => {
    const cls = "class Calc {\n  add(a: number, b: number) {|\n}\n";
    expect(post("\n    return a + b;\n  }", cls, true, "typescript")).toBe("\n    return a + b;\n  }");
    // Same indentation: the suffix has that closer already.
    const method = "class Calc {\n  add(a: number, b: number) {|\n  }\n}\n";
    expect(post("\n    return a + b;\n  }", method, true, "typescript")).toBe("\n    return a + b;");
  });

  it("does not take a bare closing bracket line for a repeat of the suffix's", () => {
    const c = "int main(void) {\n    |\n}\n";
    // The completion's own `}` closes its `if`; the enclosing `}` is cut by the bracket rule.
    expect(post("if (argc > 1) {\n        return 1;\n    }\n    return 0;\n}", c, true, "c")).toBe(
      "if (argc > 1) {\n        return 1;\n    }\n    return 0;",
    );
  });

  it("keeps a first line that continues a non-blank cursor line even when it looks like the next line", () => {
    expect(post("return x", "    |\n    return x\n", true, "python")).toBeUndefined();
    expect(post("x", "    return |\n    return x\n", true, "python")).toBe("x");
  });

  it("handles CRLF suffixes and an empty suffix", () => {
    const crlf = "def f():\r\n    |\r\n    return y\r\n";
    expect(post("y = 2\r\n    return y\r\n", crlf, true, "python")).toBe("y = 2");
    expect(post("print('done')", "main()\n|", true, "python")).toBe("print('done')");
  });

  it("works without a language id", () => {
    expect(post("a, b)", "foo(|)", false)).toBe("a, b");
    expect(post("'x')", "f(|)", false)).toBe("'x'");
  });
});
