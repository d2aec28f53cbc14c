// The text around the cursor that goes into a fill-in-the-middle prompt, cut so that the prompt changes as little as
// possible from one keystroke to the next.
//
// The engine builds SPM prompts (`<PRE> <SUF>suffix <MID>prefix`) and reuses the longest run of tokens it has already
// evaluated, so a keystroke costs only the tokens from the first change on. Typing changes the end of the prefix,
// which comes last; everything before it must stay put: the suffix and the start of the prefix. Both windows are
// therefore whole lines whose outer edges move in steps of `chunkLines`, never with each keystroke:
// - the prefix starts at a line counted from the top of the file, aligned down to a multiple of chunkLines. Typing,
//   Enter and Backspace near the cursor leave the lines above it where they are, so the start stays;
// - the suffix ends at a line counted from the bottom of the file, with the number of lines after the window a
//   multiple of chunkLines. Enter splits the cursor line: the cursor's line number and the line count both grow by
//   one, the distance to the end of the file does not, and neither does the suffix's text.
// The prefix holds at least linesBefore whole lines before the cursor line (all of them near the top of the file),
// and fewer than linesBefore + chunkLines; likewise the suffix and linesAfter.
//
// Lines are split on "\n"; a "\r" before it stays part of the text, so CRLF files keep their line breaks.

export interface FimContextLimits {
  /** Whole lines before the cursor line that the prefix holds at least. */
  linesBefore: number;
  /** Whole lines after the cursor line that the suffix holds at least. */
  linesAfter: number;
  /** The step in which the windows' outer edges move (default 32); 1 gives windows of exactly the lines asked for. */
  chunkLines?: number;
}

export interface FimContext {
  /** From the start of line prefixStartLine up to the cursor. */
  prefix: string;
  /** From the cursor to the end of line suffixEndLine, with its line break when it has one. */
  suffix: string;
  /** 0-based first line of the prefix. */
  prefixStartLine: number;
  /** 0-based last line of the suffix (inclusive). */
  suffixEndLine: number;
}

export const DEFAULT_CHUNK_LINES = 32;

function checkCount(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be a whole number >= ${min}, got ${value}`);
}

/** Offsets at which each line starts (the first is 0; a text of n line breaks has n + 1 lines). */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) starts.push(at + 1);
  return starts;
}

/**
 * The prefix and suffix around the cursor at 0-based `line` and `character` (UTF-16 code units, as VS Code counts
 * them; a "\r" ending the line is not a position). Throws a RangeError for a position outside the text.
 */
export function extractFimContext(text: string, line: number, character: number, limits: FimContextLimits): FimContext {
  const chunk = limits.chunkLines ?? DEFAULT_CHUNK_LINES;
  checkCount("linesBefore", limits.linesBefore, 0);
  checkCount("linesAfter", limits.linesAfter, 0);
  checkCount("chunkLines", chunk, 1);
  const starts = lineStarts(text);
  const lineCount = starts.length;
  if (!Number.isInteger(line) || line < 0 || line >= lineCount) {
    throw new RangeError(`line ${line} is outside the text (0..${lineCount - 1})`);
  }
  const lineStart = starts[line];
  let lineEnd = line + 1 < lineCount ? starts[line + 1] - 1 : text.length;
  if (lineEnd > lineStart && text.charCodeAt(lineEnd - 1) === 13 /* \r */) lineEnd--;
  if (!Number.isInteger(character) || character < 0 || character > lineEnd - lineStart) {
    throw new RangeError(`character ${character} is outside line ${line} (0..${lineEnd - lineStart})`);
  }
  const cursor = lineStart + character;

  const prefixStartLine = Math.max(0, Math.floor((line - limits.linesBefore) / chunk) * chunk);
  const linesBelowCursor = lineCount - 1 - line;
  const linesBelowWindow = Math.max(0, Math.floor((linesBelowCursor - limits.linesAfter) / chunk) * chunk);
  const suffixEndLine = lineCount - 1 - linesBelowWindow;
  const suffixEnd = suffixEndLine + 1 < lineCount ? starts[suffixEndLine + 1] : text.length;
  return {
    prefix: text.slice(starts[prefixStartLine], cursor),
    suffix: text.slice(cursor, suffixEnd),
    prefixStartLine,
    suffixEndLine,
  };
}

/**
 * A cheap token count for code under CodeLLaMA's SentencePiece vocabulary: about four characters a token, with a run
 * of whitespace (indentation) counted as one character because the vocabulary has tokens for runs of spaces. It
 * tends to count low, which is the safe side for trimPrefixToBudget: it then removes at least enough.
 */
export function roughTokenCount(text: string): number {
  let chars = 0;
  let inWhitespace = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const whitespace = code === 32 || code === 9 || code === 10 || code === 13;
    if (!whitespace || !inWhitespace) chars++;
    inWhitespace = whitespace;
  }
  return Math.ceil(chars / 4);
}

export interface TrimOptions {
  /** Whole lines dropped at a time (default 32), counted from the prefix's start. */
  chunkLines?: number;
}

/** How many characters to drop from the front of a prefix, and how many lines that is. */
function prefixCut(
  prefix: string,
  overBudgetTokens: number,
  estimateTokens: (s: string) => number,
  chunk: number,
): { cut: number; lines: number } {
  checkCount("chunkLines", chunk, 1);
  let cut = 0;
  let lines = 0;
  if (!(overBudgetTokens > 0)) return { cut, lines };
  // The cursor's line is the text after the last line break; it is never cut into.
  const cursorLineStart = prefix.lastIndexOf("\n") + 1;
  let removed = 0;
  while (cut < cursorLineStart && removed < overBudgetTokens) {
    let next = cut;
    for (let i = 0; i < chunk && next < cursorLineStart; i++) {
      next = prefix.indexOf("\n", next) + 1;
      lines++;
    }
    removed += estimateTokens(prefix.slice(cut, next));
    cut = next;
  }
  return { cut, lines };
}

/**
 * Drops whole leading lines of `prefix`, chunkLines at a time (so that a prefix that grows by a few tokens keeps the
 * same start, which the engine's prefix reuse needs), until the estimated tokens removed cover overBudgetTokens, or
 * only the cursor's line (the text after the last "\n") is left: that is never cut into. A budget of 0 or less
 * returns the prefix unchanged. When the prefix starts at a line aligned to chunkLines (as extractFimContext makes
 * it), the trimmed one does too.
 */
export function trimPrefixToBudget(
  prefix: string,
  overBudgetTokens: number,
  estimateTokens: (s: string) => number = roughTokenCount,
  options: TrimOptions = {},
): string {
  return prefix.slice(prefixCut(prefix, overBudgetTokens, estimateTokens, options.chunkLines ?? DEFAULT_CHUNK_LINES).cut);
}

/** trimPrefixToBudget on a FimContext's prefix, with prefixStartLine moved past the dropped lines. */
export function trimFimContextToBudget(
  context: FimContext,
  overBudgetTokens: number,
  estimateTokens: (s: string) => number = roughTokenCount,
  options: TrimOptions = {},
): FimContext {
  const { cut, lines } = prefixCut(context.prefix, overBudgetTokens, estimateTokens, options.chunkLines ?? DEFAULT_CHUNK_LINES);
  if (cut === 0) return context;
  return { ...context, prefix: context.prefix.slice(cut), prefixStartLine: context.prefixStartLine + lines };
}
