// Markdown to HTML for the Explain Selection panel. The model's answer streams in and the whole text is rendered
// again as it grows, so the renderer has to be cheap (a pass over the lines per level of nesting, then one over
// each paragraph's text), total (any prefix of an answer renders: unclosed fences and markers included) and safe:
// its output goes into a webview, so every character taken from the source is escaped and the only markup is the
// renderer's own.
//
// It follows CommonMark and GFM where model answers go (fences, lists, pipe tables, emphasis with its flanking
// rules, so that snake_case_names stay as written) and is lenient where they stray from it (a list nested two
// spaces under "1."). Not supported: raw HTML and entity references (shown as written), reference links,
// autolinks, setext headings ("text\n---" is a paragraph and a rule), indented code blocks (they would turn the
// continuation lines models indent into code).

export function renderMarkdown(source: string): string {
  // CommonMark replaces U+0000; in a webview's HTML it would be at best garbage.
  const lines = source.replace(/\0/g, "\uFFFD").split(/\r\n?|\n/);
  return renderBlocks(parseBlocks(lines, 0).blocks, false);
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
};

const HTML_SPECIAL = /[&<>"']/;

function escapeHtml(text: string): string {
  return HTML_SPECIAL.test(text) ? text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]) : text;
}

// ---------------------------------------------------------------------------------------------------------------
// Blocks

type Alignment = "left" | "center" | "right" | null;

type Block =
  | { kind: "heading"; level: number; text: string }
  | { kind: "paragraph"; text: string }
  | { kind: "code"; language: string; lines: string[] }
  | { kind: "quote"; children: Block[] }
  | ListBlock
  | { kind: "rule" }
  | TableBlock;

interface ListBlock {
  kind: "list";
  ordered: boolean;
  start: number;
  /** Items separated by blank lines: their paragraphs get <p> (CommonMark's loose list). */
  loose: boolean;
  items: Block[][];
}

interface TableBlock {
  kind: "table";
  alignments: Alignment[];
  header: string[];
  rows: string[][];
}

interface ParsedBlock {
  block: Block;
  /** The line after the block. */
  next: number;
}

/** Tab stops every 4 columns, as in CommonMark. */
const TAB_STOP = 4;
/**
 * Containers nested deeper than this (quotes in lists in quotes...) are rendered as text: no answer needs them, and
 * the cap bounds the recursion on hostile input.
 */
const MAX_NESTING = 16;

const BLANK = /^[ \t]*$/;
const QUOTE_START = /^[ \t]*>/;

function isBlank(line: string): boolean {
  return BLANK.test(line);
}

/** The index of the first character at or after `from` that is not a space or tab, and its column. */
function skipSpaces(line: string, from: number, column: number): { index: number; column: number } {
  let index = from;
  for (; index < line.length && (line[index] === " " || line[index] === "\t"); index++) {
    column = line[index] === "\t" ? column + TAB_STOP - (column % TAB_STOP) : column + 1;
  }
  return { index, column };
}

function indentOf(line: string): number {
  return skipSpaces(line, 0, 0).column;
}

/**
 * The line without its first `columns` columns of indentation (all of it, if it has fewer). A tab straddling the cut
 * leaves its remaining columns as spaces, so that code inside a list item keeps its shape.
 */
function dedent(line: string, columns: number): string {
  let index = 0;
  let column = 0;
  for (; index < line.length && column < columns; index++) {
    if (line[index] === " ") {
      column++;
    } else if (line[index] === "\t") {
      const next = column + TAB_STOP - (column % TAB_STOP);
      if (next > columns) return " ".repeat(next - columns) + line.slice(index + 1);
      column = next;
    } else {
      break;
    }
  }
  return line.slice(index);
}

interface Fence {
  char: string;
  length: number;
  /** Indentation of the opening fence, removed from the code lines as far as they have it. */
  indent: number;
  language: string;
}

function fenceOpening(line: string): Fence | null {
  const { index, column } = skipSpaces(line, 0, 0);
  const match = /^(`{3,}|~{3,})(.*)$/.exec(line.slice(index));
  if (!match) return null;
  const info = match[2].trim();
  // A backtick in a backtick fence's info string makes the line inline code ("```x``` y"), as in CommonMark.
  if (match[1][0] === "`" && info.includes("`")) return null;
  // Only the leading [A-Za-z0-9_+-] of the first word goes into the class attribute: "python:main.py" -> python.
  const language = /^[A-Za-z0-9_+-]*/.exec(info)![0];
  return { char: match[1][0], length: match[1].length, indent: column, language };
}

function closesFence(line: string, fence: Fence): boolean {
  const text = line.trim();
  return text.length >= fence.length && text === fence.char.repeat(text.length);
}

function heading(line: string): { level: number; text: string } | null {
  const match = /^[ \t]*(#{1,6})(?:[ \t]+(.*))?$/.exec(line);
  if (!match) return null;
  // A closing run of "#" must stand apart from the text, so that "## C#" keeps its "#".
  const text = (match[2] ?? "").trimEnd();
  let end = text.length;
  while (end > 0 && text[end - 1] === "#") end--;
  const closed = end === 0 || text[end - 1] === " " || text[end - 1] === "\t";
  return { level: match[1].length, text: closed ? text.slice(0, end).trimEnd() : text };
}

/** Three or more of one of "-", "*", "_", spaces and tabs between them allowed. */
function isRule(line: string): boolean {
  // A loop rather than a regular expression: every line of every paragraph is asked, and most fail at once.
  let mark = "";
  let marks = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === " " || c === "\t") continue;
    if (mark === "" && (c === "-" || c === "*" || c === "_")) mark = c;
    else if (c !== mark) return false;
    marks++;
  }
  return marks >= 3;
}

interface ListMarker {
  ordered: boolean;
  /** "-", "*" or "+" for a bullet, "." or ")" after a number: a different one starts a new list. */
  symbol: string;
  start: number;
  indent: number;
  /** Lines indented at least this far belong to the item. */
  contentColumn: number;
  /** The text after the marker on its line. */
  content: string;
}

/** The list marker that starts `line`, unless the line is a rule ("- - -", "* * *"). */
function listItemStart(line: string): ListMarker | null {
  if (isRule(line)) return null;
  const { index, column } = skipSpaces(line, 0, 0);
  const match = /^(?:([-*+])|(\d{1,9})([.)]))(?=[ \t]|$)/.exec(line.slice(index));
  if (!match) return null;
  const markerEnd = column + match[0].length;
  const after = skipSpaces(line, index + match[0].length, markerEnd);
  const content = line.slice(after.index);
  // Text five or more columns past the marker would be indented code in CommonMark, which keeps the item's content
  // column one past the marker; so does an item whose first line is empty.
  const contentColumn = content === "" || after.column - markerEnd > 4 ? markerEnd + 1 : after.column;
  const ordered = match[2] !== undefined;
  return {
    ordered,
    symbol: ordered ? match[3] : match[1],
    start: ordered ? Number(match[2]) : 1,
    indent: column,
    contentColumn,
    content,
  };
}

/** Whether `line` ends a paragraph by starting another block. */
function interruptsParagraph(line: string): boolean {
  if (fenceOpening(line) || heading(line) || isRule(line) || QUOTE_START.test(line)) return true;
  const marker = listItemStart(line);
  // As in CommonMark, only a non-empty item, and an ordered one only from 1, starts a list under a paragraph line,
  // so that a wrapped "... in\n2024. We ..." stays text.
  return marker !== null && !isBlank(marker.content) && (!marker.ordered || marker.start === 1);
}

/**
 * Whether a line that is not marked or indented as part of a list item or quote still continues the paragraph it
 * ends with (CommonMark's lazy continuation line).
 */
function continuesLazily(line: string): boolean {
  return !isBlank(line) && !interruptsParagraph(line) && listItemStart(line) === null;
}

/** The cells of a table row; "\|" is a pipe inside a cell, even in a code span (as in GFM). */
function splitRow(line: string): string[] {
  const text = line.trim();
  const cells: string[] = [];
  let cell = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\" && text[i + 1] === "|") {
      cell += "|";
      i++;
    } else if (text[i] === "|") {
      cells.push(cell);
      cell = "";
    } else {
      cell += text[i];
    }
  }
  cells.push(cell);
  if (text.startsWith("|")) cells.shift();
  if (cells.length > 0 && text.endsWith("|") && !text.endsWith("\\|")) cells.pop();
  return cells.map((c) => c.trim());
}

function delimiterRow(line: string): Alignment[] | null {
  if (!line.includes("|")) return null;
  const alignments: Alignment[] = [];
  for (const cell of splitRow(line)) {
    if (!/^:?-+:?$/.test(cell)) return null;
    const left = cell.startsWith(":");
    const right = cell.endsWith(":");
    alignments.push(left && right ? "center" : right ? "right" : left ? "left" : null);
  }
  return alignments;
}

/** A table's header and alignments when lines[i] is a header row followed by a delimiter row of as many cells. */
function tableStart(lines: string[], i: number): { header: string[]; alignments: Alignment[] } | null {
  if (i + 1 >= lines.length || !lines[i].includes("|")) return null;
  const alignments = delimiterRow(lines[i + 1]);
  if (alignments === null) return null;
  const header = splitRow(lines[i]);
  return header.length === alignments.length ? { header, alignments } : null;
}

function parseBlocks(lines: string[], depth: number): { blocks: Block[]; blankBetween: boolean } {
  const blocks: Block[] = [];
  // Whether a blank line separates two of the blocks: in a list item, that makes the list loose.
  let blankBetween = false;
  let blankBefore = false;
  for (let i = 0; i < lines.length; ) {
    if (isBlank(lines[i])) {
      blankBefore = blocks.length > 0;
      i++;
      continue;
    }
    blankBetween ||= blankBefore;
    blankBefore = false;
    const parsed = parseBlock(lines, i, depth);
    blocks.push(parsed.block);
    i = parsed.next;
  }
  return { blocks, blankBetween };
}

/** The block that starts at the non-blank line lines[i]; it always takes at least that line. */
function parseBlock(lines: string[], i: number, depth: number): ParsedBlock {
  const line = lines[i];
  const fence = fenceOpening(line);
  if (fence) return parseFence(lines, i, fence);
  const head = heading(line);
  if (head) return { block: { kind: "heading", ...head }, next: i + 1 };
  if (isRule(line)) return { block: { kind: "rule" }, next: i + 1 };
  if (depth < MAX_NESTING) {
    if (QUOTE_START.test(line)) return parseQuote(lines, i, depth);
    const marker = listItemStart(line);
    if (marker) return parseList(lines, i, marker, depth);
  }
  const table = tableStart(lines, i);
  if (table) return parseTable(lines, i, table);
  return parseParagraph(lines, i);
}

function parseFence(lines: string[], i: number, fence: Fence): ParsedBlock {
  const code: string[] = [];
  let j = i + 1;
  for (; j < lines.length && !closesFence(lines[j], fence); j++) code.push(dedent(lines[j], fence.indent));
  // An answer cut off inside a fence (streaming) is still code: the block then holds the rest of the input.
  return { block: { kind: "code", language: fence.language, lines: code }, next: Math.min(j + 1, lines.length) };
}

function parseQuote(lines: string[], i: number, depth: number): ParsedBlock {
  const inner: string[] = [];
  let j = i;
  for (; j < lines.length; j++) {
    const line = lines[j];
    if (QUOTE_START.test(line)) {
      const marker = line.indexOf(">");
      // One space after ">" belongs to the marker.
      inner.push(line.slice(line[marker + 1] === " " || line[marker + 1] === "\t" ? marker + 2 : marker + 1));
    } else if (!isBlank(inner[inner.length - 1]) && continuesLazily(line)) {
      inner.push(line);
    } else {
      break;
    }
  }
  return { block: { kind: "quote", children: parseBlocks(inner, depth + 1).blocks }, next: j };
}

function parseList(lines: string[], i: number, first: ListMarker, depth: number): ParsedBlock {
  const items: Block[][] = [];
  let loose = false;
  for (let marker = first, at = i; ; ) {
    const item = collectItem(lines, at, marker);
    const parsed = parseBlocks(item.lines, depth + 1);
    items.push(parsed.blocks);
    loose ||= parsed.blankBetween;
    const sibling = item.next < lines.length ? listItemStart(lines[item.next]) : null;
    if (sibling === null || sibling.ordered !== first.ordered || sibling.symbol !== first.symbol) {
      return { block: { kind: "list", ordered: first.ordered, start: first.start, loose, items }, next: item.end };
    }
    loose ||= item.next > item.end;
    marker = sibling;
    at = item.next;
  }
}

/**
 * The lines of the list item whose marker is on lines[at], dedented to its content column; `end` is the line after
 * the item, `next` the first non-blank line after it (where a following item would start).
 */
function collectItem(lines: string[], at: number, marker: ListMarker): { lines: string[]; end: number; next: number } {
  const item = [marker.content];
  let end = at + 1;
  let next = end;
  for (; next < lines.length; next++) {
    const line = lines[next];
    if (isBlank(line)) continue;
    const indent = indentOf(line);
    // Models often nest a list two spaces under "1." where CommonMark wants three: a marker indented at least two
    // columns past this item's belongs to it whatever the item's content column.
    const nested = indent >= marker.indent + 2 && listItemStart(line) !== null;
    if (indent >= marker.contentColumn || nested) {
      for (; end < next; end++) item.push("");
      item.push(dedent(line, Math.min(indent, marker.contentColumn)));
    } else if (next === end && !isBlank(item[item.length - 1]) && continuesLazily(line)) {
      item.push(line.trimStart());
    } else {
      break;
    }
    end = next + 1;
  }
  return { lines: item, end, next };
}

function parseTable(lines: string[], i: number, start: { header: string[]; alignments: Alignment[] }): ParsedBlock {
  const rows: string[][] = [];
  let j = i + 2;
  // GFM ends a table at a blank line or another block; a line without a pipe ends it here too, since models write
  // the sentence after a table on the very next line.
  for (; j < lines.length && lines[j].includes("|") && !interruptsParagraph(lines[j]); j++) rows.push(splitRow(lines[j]));
  return { block: { kind: "table", ...start, rows }, next: j };
}

function parseParagraph(lines: string[], i: number): ParsedBlock {
  const text = [lines[i].trimStart()];
  let j = i + 1;
  for (; j < lines.length && !isBlank(lines[j]) && !interruptsParagraph(lines[j]) && !tableStart(lines, j); j++) {
    text.push(lines[j].trimStart());
  }
  return { block: { kind: "paragraph", text: text.join("\n").trimEnd() }, next: j };
}

function renderBlocks(blocks: Block[], tight: boolean): string {
  return blocks.map((block) => renderBlock(block, tight)).join("\n");
}

/** `tight`: the block is in an item of a tight list, where paragraphs go bare so that short bullets stay compact. */
function renderBlock(block: Block, tight: boolean): string {
  switch (block.kind) {
    case "heading":
      return `<h${block.level}>${renderInline(block.text)}</h${block.level}>`;
    case "paragraph":
      return tight ? renderInline(block.text) : `<p>${renderInline(block.text)}</p>`;
    case "code": {
      // The language holds only [A-Za-z0-9_+-] (fenceOpening), so it needs no escaping.
      const language = block.language ? ` class="language-${block.language}"` : "";
      return `<pre><code${language}>${escapeHtml(block.lines.map((line) => `${line}\n`).join(""))}</code></pre>`;
    }
    case "quote":
      return `<blockquote>\n${renderBlocks(block.children, false)}\n</blockquote>`;
    case "list":
      return renderList(block);
    case "rule":
      return "<hr>";
    case "table":
      return renderTable(block);
  }
}

function renderList(list: ListBlock): string {
  const tag = list.ordered ? "ol" : "ul";
  const start = list.ordered && list.start !== 1 ? ` start="${list.start}"` : "";
  const items = list.items.map((item) => `<li>${renderBlocks(item, !list.loose)}</li>`);
  return `<${tag}${start}>\n${items.join("\n")}\n</${tag}>`;
}

function renderTable(table: TableBlock): string {
  // Rows shorter than the header get empty cells and longer ones lose the excess, as in GFM.
  const row = (tag: "th" | "td", cells: string[]): string => {
    const rendered = table.alignments.map((alignment, column) => {
      // A class, not a style attribute: the webview's content security policy ignores inline styles.
      const align = alignment ? ` class="align-${alignment}"` : "";
      return `<${tag}${align}>${renderInline(cells[column] ?? "")}</${tag}>`;
    });
    return `<tr>${rendered.join("")}</tr>`;
  };
  const head = `<thead>\n${row("th", table.header)}\n</thead>`;
  const body = table.rows.length > 0 ? `\n<tbody>\n${table.rows.map((cells) => row("td", cells)).join("\n")}\n</tbody>` : "";
  return `<table>\n${head}${body}\n</table>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Inline content: CommonMark's algorithm in its usual shape. A left-to-right scan turns the text into pieces, keeping
// a stack of delimiter runs (* _ ~~) and one of brackets; a "]" followed by "(url)" makes a link of the pieces since
// its bracket, and emphasis is paired from the delimiter stack, innermost first, once per link and once at the end.
// Pairing only adds tags to the delimiter pieces, never moves anything, so the output is balanced by construction.

function renderInline(text: string): string {
  // Most table cells and many list items hold no markup: they skip the parser's setup.
  return INLINE_MARKUP.test(text) ? new InlineParser(text).render() : escapeHtml(text);
}

/** A stretch of inline output. Markup is kept apart from the text so that an image can show only its alt text. */
interface Piece {
  /** Markup before the text: the closing tags of the emphasis a delimiter run closes, a link's </a>. */
  before: string;
  /** Escaped text; for a delimiter run, its characters that are still unpaired. */
  text: string;
  /** Markup after the text: the opening tags of the emphasis a delimiter run opens, a link's <a>. */
  after: string;
  /** Part of an image's alt text: only the text is output. */
  altOnly: boolean;
}

type DelimiterChar = "*" | "_" | "~";

/** A run of "*", "_" or "~~" that may open or close emphasis; the stack is a doubly linked list, as in commonmark.js. */
interface Delimiter {
  piece: Piece;
  char: DelimiterChar;
  /** The run's original length, for the "rule of 3". */
  length: number;
  /** Characters not yet paired. */
  count: number;
  canOpen: boolean;
  canClose: boolean;
  prev: Delimiter | null;
  next: Delimiter | null;
}

interface Bracket {
  piece: Piece;
  /** Index of `piece` in the pieces. */
  index: number;
  image: boolean;
  /** False once a link formed after it: links do not nest. */
  active: boolean;
  /** The delimiter stack's top when the bracket opened: emphasis inside the link pairs only above it. */
  bottom: Delimiter | null;
}

const ASCII_PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
const UNICODE_PUNCTUATION = /[\p{P}\p{S}]/u;
const WHITESPACE = /\s/;
/** Characters the scan stops at; runs of any others are plain text (global: searched from a lastIndex). */
const INLINE_SPECIAL = /[\\`*_~[\]!\n]/g;
const INLINE_MARKUP = new RegExp(INLINE_SPECIAL.source);
const TITLE_CLOSERS = new Map([['"', '"'], ["'", "'"], ["(", ")"]]);
/**
 * Links open from the panel only with these schemes: not javascript: or data:, which would run in the webview, nor
 * vscode: (commands), nor a relative URL, which would resolve against the webview's own origin.
 */
const SAFE_URL = /^(?:https?:|mailto:)/i;

function isWhitespace(c: string): boolean {
  return WHITESPACE.test(c);
}

function isPunctuation(c: string): boolean {
  return ASCII_PUNCTUATION.has(c) || UNICODE_PUNCTUATION.test(c);
}

class InlineParser {
  private readonly source: string;
  private readonly pieces: Piece[] = [];
  /** Raw text scanned since the last piece. */
  private text = "";
  private pos = 0;
  /** Top of the delimiter stack. */
  private top: Delimiter | null = null;
  private readonly brackets: Bracket[] = [];
  private readonly backtickRuns: BacktickRuns;

  constructor(source: string) {
    this.source = source;
    this.backtickRuns = new BacktickRuns(source);
  }

  render(): string {
    const s = this.source;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === "\\") this.backslash();
      else if (c === "`") this.codeSpan();
      else if (c === "*" || c === "_" || c === "~") this.delimiterRun(c);
      else if (c === "[") this.openBracket(false);
      else if (c === "!" && s[this.pos + 1] === "[") this.openBracket(true);
      else if (c === "]") this.closeBracket();
      else if (c === "\n") this.lineBreak();
      else this.plainText();
    }
    this.flushText();
    this.pairEmphasis(null);
    return this.pieces.map((p) => (p.altOnly ? p.text : p.before + p.text + p.after)).join("");
  }

  private plainText(): void {
    INLINE_SPECIAL.lastIndex = this.pos + 1;
    const end = INLINE_SPECIAL.exec(this.source)?.index ?? this.source.length;
    this.text += this.source.slice(this.pos, end);
    this.pos = end;
  }

  private flushText(): void {
    if (this.text === "") return;
    this.pieces.push({ before: "", text: escapeHtml(this.text), after: "", altOnly: false });
    this.text = "";
  }

  private pushPiece(before: string, text: string, after: string): Piece {
    this.flushText();
    const piece = { before, text, after, altOnly: false };
    this.pieces.push(piece);
    return piece;
  }

  private backslash(): void {
    const next = this.source[this.pos + 1];
    if (next === "\n") {
      this.pushPiece("<br>", "\n", "");
      this.pos += 2;
    } else if (ASCII_PUNCTUATION.has(next)) {
      this.text += next;
      this.pos += 2;
    } else {
      this.text += "\\";
      this.pos++;
    }
  }

  private lineBreak(): void {
    // Spaces before a line break are dropped; two or more of them make it a hard break.
    let end = this.text.length;
    while (end > 0 && this.text[end - 1] === " ") end--;
    const spaces = this.text.length - end;
    this.text = this.text.slice(0, end);
    if (spaces >= 2) this.pushPiece("<br>", "\n", "");
    else this.text += "\n";
    this.pos++;
  }

  private codeSpan(): void {
    const s = this.source;
    const start = this.pos;
    let end = start;
    while (s[end] === "`") end++;
    const close = this.backtickRuns.find(end - start, end);
    if (close < 0) {
      this.text += s.slice(start, end);
      this.pos = end;
      return;
    }
    let code = s.slice(end, close).replace(/\n/g, " ");
    // One space is stripped from each side so that "`` `x` ``" can show backticks, unless the span is only spaces.
    if (code.length >= 2 && code.startsWith(" ") && code.endsWith(" ") && code.trim() !== "") code = code.slice(1, -1);
    this.pushPiece("<code>", escapeHtml(code), "</code>");
    this.pos = close + (end - start);
  }

  private delimiterRun(char: DelimiterChar): void {
    const s = this.source;
    const start = this.pos;
    let end = start;
    while (s[end] === char) end++;
    this.pos = end;
    const run = s.slice(start, end);
    // Only "~~" strikes through: a single "~" is how models write "about" (~5 ms).
    if (char === "~" && run.length !== 2) {
      this.text += run;
      return;
    }
    const before = start > 0 ? s[start - 1] : "\n";
    const after = end < s.length ? s[end] : "\n";
    const leftFlanking = !isWhitespace(after) && (!isPunctuation(after) || isWhitespace(before) || isPunctuation(before));
    const rightFlanking = !isWhitespace(before) && (!isPunctuation(before) || isWhitespace(after) || isPunctuation(after));
    // "_" neither opens nor closes inside a word, so that snake_case_names stay as written.
    const canOpen = char === "_" ? leftFlanking && (!rightFlanking || isPunctuation(before)) : leftFlanking;
    const canClose = char === "_" ? rightFlanking && (!leftFlanking || isPunctuation(after)) : rightFlanking;
    const piece = this.pushPiece("", run, "");
    if (!canOpen && !canClose) return;
    const delimiter: Delimiter = {
      piece, char, length: run.length, count: run.length, canOpen, canClose, prev: this.top, next: null,
    };
    if (this.top) this.top.next = delimiter;
    this.top = delimiter;
  }

  private openBracket(image: boolean): void {
    const piece = this.pushPiece("", image ? "![" : "[", "");
    this.brackets.push({ piece, index: this.pieces.length - 1, image, active: true, bottom: this.top });
    this.pos += image ? 2 : 1;
  }

  private closeBracket(): void {
    const opener = this.brackets.pop();
    const tail = opener?.active ? parseLinkTail(this.source, this.pos + 1) : null;
    if (!opener || !tail) {
      this.text += "]";
      this.pos++;
      return;
    }
    const closing = this.pushPiece("", "", "");
    this.pairEmphasis(opener.bottom);
    opener.piece.text = "";
    if (opener.image) {
      // Nothing remote may load in the panel: an image shows as its alt text.
      for (let k = opener.index; k < this.pieces.length; k++) this.pieces[k].altOnly = true;
    } else {
      if (SAFE_URL.test(tail.destination)) {
        opener.piece.after = `<a href="${escapeHtml(tail.destination)}">`;
        closing.before = "</a>";
      }
      for (const bracket of this.brackets) if (!bracket.image) bracket.active = false;
    }
    this.pos = tail.end;
  }

  /**
   * Pairs the delimiters above `bottom` into emphasis (CommonMark's "process emphasis") and drops them from the
   * stack; those left unpaired stay as literal text.
   */
  private pairEmphasis(bottom: Delimiter | null): void {
    // Where a closer found no opener, later closers of its kind need not search below the same point again
    // (CommonMark's openers_bottom): this keeps a paragraph full of stray "*" linear.
    const searchedDownTo = new Map<string, Delimiter | null>();
    let closer = this.firstAbove(bottom);
    while (closer !== null) {
      if (!closer.canClose) {
        closer = closer.next;
        continue;
      }
      const kind = `${closer.char}${closer.canOpen ? 1 : 0}${closer.length % 3}`;
      const limit = searchedDownTo.has(kind) ? searchedDownTo.get(kind) : bottom;
      let opener = closer.prev;
      while (opener !== null && opener !== bottom && opener !== limit && !canPair(opener, closer)) opener = opener.prev;
      if (opener !== null && opener !== bottom && opener !== limit) {
        closer = this.pair(opener, closer);
      } else {
        searchedDownTo.set(kind, closer.prev);
        const next: Delimiter | null = closer.next;
        if (!closer.canOpen) this.remove(closer);
        closer = next;
      }
    }
    this.top = bottom;
    if (bottom) bottom.next = null;
  }

  /** Pairs the innermost characters of two runs; returns the closer to look at next. */
  private pair(opener: Delimiter, closer: Delimiter): Delimiter | null {
    const used = opener.char === "~" || (opener.count >= 2 && closer.count >= 2) ? 2 : 1;
    const tag = opener.char === "~" ? "del" : used === 2 ? "strong" : "em";
    // An opener gives up its rightmost characters and a closer its leftmost, so a run's later tags go outside its
    // earlier ones: "***a***" is <em><strong>a</strong></em>.
    opener.count -= used;
    opener.piece.text = opener.char.repeat(opener.count);
    opener.piece.after = `<${tag}>${opener.piece.after}`;
    closer.count -= used;
    closer.piece.text = closer.char.repeat(closer.count);
    closer.piece.before += `</${tag}>`;
    // The delimiters in between could only pair across this one's boundary now: they stay literal.
    opener.next = closer;
    closer.prev = opener;
    if (opener.count === 0) this.remove(opener);
    if (closer.count > 0) return closer;
    const next = closer.next;
    this.remove(closer);
    return next;
  }

  private firstAbove(bottom: Delimiter | null): Delimiter | null {
    if (this.top === bottom) return null;
    let delimiter = this.top;
    while (delimiter !== null && delimiter.prev !== bottom) delimiter = delimiter.prev;
    return delimiter;
  }

  private remove(delimiter: Delimiter): void {
    if (delimiter.prev) delimiter.prev.next = delimiter.next;
    if (delimiter.next) delimiter.next.prev = delimiter.prev;
    if (this.top === delimiter) this.top = delimiter.prev;
  }
}

/** CommonMark's rule: runs of the same character pair unless the "rule of 3" forbids it. */
function canPair(opener: Delimiter, closer: Delimiter): boolean {
  if (opener.char !== closer.char || !opener.canOpen) return false;
  if (opener.char === "~") return true;
  // A run that could also open or close the other way does not pair with one whose length makes the sum a multiple
  // of 3 (unless both are), so that "*a**b**c*" nests as <em>a<strong>b</strong>c</em>.
  const either = opener.canClose || closer.canOpen;
  return !(either && (opener.length + closer.length) % 3 === 0 && (opener.length % 3 !== 0 || closer.length % 3 !== 0));
}

/**
 * Where each run of backticks in a text starts, by length: a code span's closing run is looked up here instead of
 * rescanning the rest of the text after every opening run, which would be quadratic on stray backticks.
 */
class BacktickRuns {
  private readonly startsByLength = new Map<number, number[]>();
  /** Per length, how many starts earlier lookups passed: lookups come in increasing order. */
  private readonly passed = new Map<number, number>();

  constructor(source: string) {
    for (let i = source.indexOf("`"); i >= 0; ) {
      let end = i;
      while (source[end] === "`") end++;
      const starts = this.startsByLength.get(end - i);
      if (starts) starts.push(i);
      else this.startsByLength.set(end - i, [i]);
      i = source.indexOf("`", end);
    }
  }

  /** The start of the first run of exactly `length` backticks at or after `from`, or -1. */
  find(length: number, from: number): number {
    const starts = this.startsByLength.get(length);
    if (!starts) return -1;
    let k = this.passed.get(length) ?? 0;
    while (k < starts.length && starts[k] < from) k++;
    this.passed.set(length, k);
    return k < starts.length ? starts[k] : -1;
  }
}

/**
 * The "(destination "title")" of an inline link starting at s[from]: the destination with its backslash escapes
 * resolved, and the index after the ")". Null when there is none. The title is parsed so that the link is
 * recognized, then dropped: the panel does not need it, and it is one attribute less to get wrong.
 */
function parseLinkTail(s: string, from: number): { destination: string; end: number } | null {
  if (s[from] !== "(") return null;
  let i = skipLinkSpace(s, from + 1);
  let destination: string;
  if (s[i] === "<") {
    let j = i + 1;
    while (j < s.length && s[j] !== ">" && s[j] !== "<" && s[j] !== "\n") j += s[j] === "\\" ? 2 : 1;
    if (s[j] !== ">") return null;
    destination = s.slice(i + 1, j);
    i = j + 1;
  } else {
    let j = i;
    let parentheses = 0;
    for (; j < s.length; j++) {
      const c = s[j];
      if (c === "\\" && ASCII_PUNCTUATION.has(s[j + 1])) j++;
      else if (c === "(") parentheses++;
      else if (c === ")") {
        if (parentheses === 0) break;
        parentheses--;
      } else if (c <= " ") {
        break; // spaces and control characters end a bare destination
      }
    }
    if (parentheses !== 0) return null;
    destination = s.slice(i, j);
    i = j;
  }
  const afterDestination = i;
  i = skipLinkSpace(s, i);
  const titleEnd = TITLE_CLOSERS.get(s[i]);
  if (titleEnd !== undefined && i > afterDestination) {
    let j = i + 1;
    while (j < s.length && s[j] !== titleEnd) j += s[j] === "\\" ? 2 : 1;
    if (j >= s.length) return null;
    i = skipLinkSpace(s, j + 1);
  }
  if (s[i] !== ")") return null;
  return { destination: destination.replace(/\\([!-/:-@[-`{-~])/g, "$1"), end: i + 1 };
}

function skipLinkSpace(s: string, i: number): number {
  while (s[i] === " " || s[i] === "\t" || s[i] === "\n") i++;
  return i;
}
