// The rules that shape an inline completion: whether to ask for one line or several, when to stop generating, and
// how to clean up what the model wrote so that it fits between the text before and after the cursor.
//
// Naming: the cursor line is split into linePrefix (before the cursor) and lineSuffix (after it); `suffix` is all
// the text after the cursor that the prompt holds (it starts with lineSuffix).

/** Languages whose blocks open with a line ending in ":" (after a block keyword). */
const COLON_BLOCK_LANGUAGES = new Set(["python", "cython", "starlark"]);
/** Languages whose blocks open with a trailing `do` or `then` keyword. */
const KEYWORD_BLOCK_LANGUAGES = new Set(["ruby", "lua", "shellscript", "elixir", "julia"]);
/** Languages whose line comments start with "#" (the others are taken to use "//"). */
const HASH_COMMENT_LANGUAGES = new Set([
  "python", "cython", "starlark", "ruby", "shellscript", "perl", "r", "yaml", "toml", "makefile", "cmake",
  "dockerfile", "elixir", "julia", "powershell", "coffeescript", "nim",
]);
/** Languages in which "'" does not delimit strings (lifetimes, primes, apostrophes in prose). */
const NO_SINGLE_QUOTE_LANGUAGES = new Set(["rust", "ocaml", "haskell", "markdown", "plaintext", "latex", "tex"]);

const PYTHON_BLOCK_LINE =
  /^\s*(?:async\s+)?(?:def|class|if|elif|else|for|while|try|except|finally|with|match|case)\b.*:$/;
const KEYWORD_BLOCK_END = /(?:^|[^\w])(?:do|then)(?:\s*\|[^|]*\|)?$/;
/** Text after the cursor that still leaves room for a completion: closing brackets, quotes, `;` and `,`. */
const CLOSING_TAIL = /^[\s)\]}"'`;,]*$/;

const CLOSER_OF: Readonly<Record<string, string>> = { "(": ")", "[": "]", "{": "}" };
const OPENER_OF: Readonly<Record<string, string>> = { ")": "(", "]": "[", "}": "{" };

/**
 * Whether the text before the cursor on its line ends by opening a block, so that what follows is the block's body:
 * a trailing `{` or `=>` (any language), a Python block line (`def f(x):`, `if a:`, `else:`... with an optional
 * trailing comment), or a trailing `do`/`then` (Ruby, Lua, shell, Elixir, Julia).
 */
export function opensBlock(linePrefix: string, languageId: string): boolean {
  const text = linePrefix.trimEnd();
  if (text.endsWith("{") || text.endsWith("=>")) return true;
  if (COLON_BLOCK_LANGUAGES.has(languageId)) {
    return PYTHON_BLOCK_LINE.test(text.replace(/\s+#[^'"]*$/, ""));
  }
  return KEYWORD_BLOCK_LANGUAGES.has(languageId) && KEYWORD_BLOCK_END.test(text);
}

/**
 * Whether to ask for a multi-line completion at the cursor. The rules, in order:
 * 1. text after the cursor on its line other than closing brackets, quotes, `;` and `,` -> single line (the user is
 *    editing inside a line: `foo(|, b)`, `|return x`);
 * 2. a blank line prefix (an empty or whitespace-only line, e.g. the new line after `{` or `def f():`, or the cursor
 *    in a line's indentation) -> multi-line;
 * 3. a line prefix that opens a block (see opensBlock: `function f() {|}`, `def f():|`, `x => |`) -> multi-line;
 * 4. anything else (mid-expression, after a statement, in a comment) -> single line.
 */
export function decideMultiline(linePrefix: string, lineSuffix: string, languageId: string): boolean {
  if (!CLOSING_TAIL.test(lineSuffix)) return false;
  if (linePrefix.trim() === "") return true;
  return opensBlock(linePrefix, languageId);
}

/** Columns that leading whitespace takes, tabs advancing to the next multiple of tabSize. */
export function indentWidth(indent: string, tabSize = 4): number {
  let width = 0;
  for (const char of indent) {
    if (char === "\t") width += tabSize - (width % tabSize);
    else if (char === " ") width++;
    else break;
  }
  return width;
}

export interface StopRulesOptions {
  multiline: boolean;
  /** Lines a multi-line completion may have (the rest of the cursor line counts as the first). */
  maxLines: number;
  /** Indentation of the cursor line. */
  cursorIndent: string;
  linePrefix: string;
  languageId: string;
  /** Columns of a tab when comparing indentation (default 4). */
  tabSize?: number;
}

export interface StopDecision {
  /** The part of the text to keep. */
  text: string;
  /** Whether generation should stop (nothing after `text` will be kept). */
  stop: boolean;
}

/**
 * Decides while tokens stream in where a completion ends. push() takes all the text generated so far and returns
 * the part to keep; it depends on that text only, so it can be called after every token.
 * - Single line: the text before the first line break; stop there.
 * - Multi-line: at most maxLines lines; and the completion stays inside the cursor's block. A later line (not the
 *   first, which continues the cursor line) that holds text and is indented less than the block ends it. When the
 *   cursor line opens a block (opensBlock), the block is the lines indented deeper than the cursor line: a line at the
 *   cursor line's indentation or less ends it, except for a line starting with a closing bracket at exactly that
 *   indentation: one that closes the new block (`}`, `});`) is kept as the last line once it is complete, one that
 *   also opens the next block (`} else {`, `}).then(() => {`) continues it. Otherwise the block's indentation is the
 *   cursor line's, and a dedented line (e.g. the `}` closing the enclosing block, which the editor already has after
 *   the cursor) is dropped. Whitespace-only and empty lines never end the block; a last
 *   line without text yet is kept until its indentation is known.
 */
export class StopRules {
  private readonly options: StopRulesOptions;
  private readonly blockWidth: number;
  private readonly opened: boolean;

  constructor(options: StopRulesOptions) {
    if (!Number.isInteger(options.maxLines) || options.maxLines < 1) {
      throw new RangeError(`maxLines must be a whole number >= 1, got ${options.maxLines}`);
    }
    this.options = options;
    this.blockWidth = indentWidth(options.cursorIndent, options.tabSize);
    this.opened = opensBlock(options.linePrefix, options.languageId);
  }

  push(text: string): StopDecision {
    if (!this.options.multiline) {
      const end = text.indexOf("\n");
      return end < 0 ? { text, stop: false } : { text: text.slice(0, end), stop: true };
    }
    const lines = text.split("\n");
    const limit = Math.min(lines.length, this.options.maxLines);
    for (let i = 1; i < limit; i++) {
      const line = lines[i].replace(/\r$/, "");
      const body = line.trimStart();
      if (body === "") continue;
      const width = indentWidth(line, this.options.tabSize);
      if (this.opened ? width > this.blockWidth : width >= this.blockWidth) continue;
      if (this.opened && width === this.blockWidth && /^[)\]}]/.test(body)) {
        if (i === lines.length - 1) return { text, stop: false }; // the closing line may still grow
        if (/[{([]$/.test(body.trimEnd())) continue; // `} else {` closes the block and opens the next one
        return { text: lines.slice(0, i + 1).join("\n"), stop: true };
      }
      return { text: lines.slice(0, i).join("\n"), stop: true };
    }
    if (lines.length > this.options.maxLines) return { text: lines.slice(0, this.options.maxLines).join("\n"), stop: true };
    return { text, stop: false };
  }
}

export interface PostProcessContext {
  linePrefix: string;
  lineSuffix: string;
  /** The text after the cursor (starting with lineSuffix), or as much of it as the prompt holds. */
  suffix: string;
  multiline: boolean;
  /** Helps tell strings and comments apart from code (which quotes delimit strings, which line comments exist). */
  languageId?: string;
}

interface Lexicon {
  lineComment: string;
  quotes: string;
}

function lexiconOf(languageId: string | undefined): Lexicon {
  const quotes = languageId !== undefined && NO_SINGLE_QUOTE_LANGUAGES.has(languageId) ? "\"`" : "\"'`";
  const lineComment = languageId !== undefined && HASH_COMMENT_LANGUAGES.has(languageId) ? "#" : "//";
  return { lineComment, quotes };
}

/** The string quote open at the end of the cursor's line prefix, if the cursor is inside a string literal. */
function openQuoteAfter(linePrefix: string, lexicon: Lexicon): string | undefined {
  let quote: string | undefined;
  for (let i = 0; i < linePrefix.length; i++) {
    const char = linePrefix[i];
    if (quote !== undefined) {
      if (char === "\\") i++;
      else if (char === quote) quote = undefined;
    } else if (lexicon.quotes.includes(char)) {
      quote = char;
    } else if (linePrefix.startsWith(lexicon.lineComment, i) || linePrefix.startsWith("/*", i)) {
      return undefined;
    }
  }
  return quote;
}

interface Closer {
  index: number;
  char: string;
  /** Closes a bracket that the completion did not open (one from before the cursor). */
  excess: boolean;
}

interface BracketScan {
  closers: Closer[];
  /** Where the completion closes the string literal the cursor was in, if it does. */
  closesQuoteAt?: number;
}

/**
 * The closing brackets of a completion outside strings and comments, each marked as closing one the completion
 * opened or one from before the cursor. Strings in ' and " end at a line break; line comments end there too.
 */
function scanBrackets(text: string, initialQuote: string | undefined, lexicon: Lexicon): BracketScan {
  const closers: Closer[] = [];
  const stack: string[] = [];
  let quote = initialQuote;
  let closesQuoteAt: number | undefined;
  let inBlockComment = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "\n") {
      if (quote !== "`") quote = undefined;
      continue;
    }
    if (inBlockComment) {
      if (text.startsWith("*/", i)) {
        inBlockComment = false;
        i++;
      }
    } else if (quote !== undefined) {
      if (char === "\\") i++;
      else if (char === quote) {
        if (initialQuote !== undefined && closesQuoteAt === undefined) closesQuoteAt = i;
        quote = undefined;
      }
    } else if (lexicon.quotes.includes(char)) {
      quote = char;
    } else if (text.startsWith(lexicon.lineComment, i)) {
      const end = text.indexOf("\n", i);
      if (end < 0) break;
      i = end - 1;
    } else if (text.startsWith("/*", i)) {
      inBlockComment = true;
      i++;
    } else if (CLOSER_OF[char] !== undefined) {
      stack.push(char);
    } else if (OPENER_OF[char] !== undefined) {
      const excess = stack.length === 0;
      if (!excess) stack.pop();
      closers.push({ index: i, char, excess });
    }
  }
  // A completion that starts outside a string cannot close the cursor's string.
  return { closers, closesQuoteAt: initialQuote === undefined ? undefined : closesQuoteAt };
}

/** Lines after the cursor line in the suffix, trimmed, blank ones left out. */
function nextSuffixLine(suffix: string): string | undefined {
  const lines = suffix.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const trimmed = lines[i].trim();
    if (trimmed !== "") return trimmed;
  }
  return undefined;
}

/**
 * Cuts the completion at its first line that repeats the first non-blank line after the cursor line (one with a
 * letter, digit or "_" in it: bare `}` lines are the bracket rule's). The completion's first line counts only when
 * the cursor line is blank, since otherwise it continues the cursor line.
 */
function dropRepeatedSuffixLines(text: string, context: PostProcessContext): string {
  const next = nextSuffixLine(context.suffix);
  if (next === undefined || !/\w/.test(next)) return text;
  const lines = text.split("\n");
  const cursorLineBlank = context.linePrefix.trim() === "" && context.lineSuffix.trim() === "";
  for (let i = cursorLineBlank ? 0 : 1; i < lines.length; i++) {
    if (lines[i].trim() === next) return lines.slice(0, i).join("\n");
  }
  return text;
}

/**
 * Drops the end of the completion when it is the text after the cursor on its line (`x = |;` with `1;`,
 * `foo(|, b)` with `a, b)`), unless a closing bracket in that end closes one the completion opened itself (`foo(|)`
 * with `bar()`: that `)` is the completion's own).
 */
function dropRepeatedLineSuffix(text: string, context: PostProcessContext, scan: BracketScan): string {
  // With the whitespace before it when the completion has that too (`1  # seconds` before `  # seconds`).
  const spaced = context.lineSuffix.trimEnd();
  const tail = text.endsWith(spaced) ? spaced : spaced.trimStart();
  if (tail.trim() === "" || !text.endsWith(tail)) return text;
  const cut = text.length - tail.length;
  if (scan.closers.some((closer) => closer.index >= cut && !closer.excess)) return text;
  return text.slice(0, cut);
}

/**
 * Cuts the completion before the first bracket that closes one opened before the cursor (or the quote that closes
 * the cursor's string), when the text after the cursor closes it already: `foo(|)` with `a, b)` -> `a, b`.
 */
function trimExcessClosers(text: string, context: PostProcessContext, scan: BracketScan): string {
  const after = context.suffix.trim() !== "" ? context.suffix : context.lineSuffix;
  const nextAt = after.search(/\S/);
  if (nextAt < 0) return text;
  const excess = scan.closers.find((closer) => closer.excess);
  let cut: { index: number; char: string } | undefined = excess;
  if (scan.closesQuoteAt !== undefined && (cut === undefined || scan.closesQuoteAt < cut.index)) {
    cut = { index: scan.closesQuoteAt, char: text[scan.closesQuoteAt] };
  }
  if (cut === undefined || cut.char !== after[nextAt]) return text;
  // Both start a line of their own at different indentations: they close different blocks (the completion closes
  // the method it wrote, the suffix the class around it).
  const ownIndent = lineIndentBefore(text, cut.index);
  const suffixIndent = lineIndentBefore(after, nextAt);
  if (ownIndent !== undefined && suffixIndent !== undefined && indentWidth(ownIndent) !== indentWidth(suffixIndent)) return text;
  return text.slice(0, cut.index);
}

/** The whitespace before `index` on its line when only whitespace is there and the line is not the text's first. */
function lineIndentBefore(text: string, index: number): string | undefined {
  const lineStart = text.lastIndexOf("\n", index - 1) + 1;
  if (lineStart === 0) return undefined;
  const indent = text.slice(lineStart, index).replace(/\r$/, "");
  return /^[ \t]*$/.test(indent) ? indent : undefined;
}

/**
 * Cleans a finished completion up; undefined when nothing worth showing is left. In order:
 * 1. a single-line completion ends at its first line break; trailing whitespace goes; whitespace-only -> undefined;
 * 2. the completion ends before a line that repeats the first non-blank line after the cursor line (the whole
 *    completion goes when the cursor line is blank and its first line is that line);
 * 3. an end that repeats the rest of the cursor line is dropped (dropRepeatedLineSuffix);
 * 4. brackets are balanced against the suffix: the completion ends before the first bracket (or quote) that closes
 *    one opened before the cursor when the suffix's next character closes it already (trimExcessClosers);
 * 5. an empty or whitespace-only result -> undefined; whitespace a cut left at the end goes when it holds a line
 *    break (spaces before the suffix's text on the cursor line are the completion's).
 */
export function postProcess(completion: string, context: PostProcessContext): string | undefined {
  let text = completion;
  if (!context.multiline) {
    const end = text.indexOf("\n");
    if (end >= 0) text = text.slice(0, end);
  }
  text = text.trimEnd();
  if (text === "") return undefined;
  text = dropRepeatedSuffixLines(text, context).trimEnd();
  if (text === "") return undefined;
  const lexicon = lexiconOf(context.languageId);
  const initialQuote = openQuoteAfter(context.linePrefix, lexicon);
  text = dropRepeatedLineSuffix(text, context, scanBrackets(text, initialQuote, lexicon));
  text = trimExcessClosers(text, context, scanBrackets(text, initialQuote, lexicon));
  return text.trim() === "" ? undefined : dropTrailingBlankLines(text);
}

/**
 * Trailing whitespace left by a cut goes when it holds a line break (the cut was at a line start); spaces before the
 * suffix's text on the same line stay: in `x = |y`, `a + y` becomes `a + `.
 */
function dropTrailingBlankLines(text: string): string {
  const trailing = /\s*$/.exec(text)![0];
  return trailing.includes("\n") ? text.slice(0, text.length - trailing.length) : text;
}
