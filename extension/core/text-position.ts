// Cursor positions in a file as a user writes them (1-based LINE:COL) and the text on either side of them.

export interface FilePosition {
  file: string;
  line: number;
  column: number;
}

/** Parses "path/to/file.py:12:5" (the path itself may contain colons). */
export function parseFilePosition(spec: string): FilePosition {
  const match = /^(.*):(\d+):(\d+)$/.exec(spec);
  if (!match || !match[1]) throw new Error(`expected FILE:LINE:COL, got "${spec}"`);
  return { file: match[1], line: Number(match[2]), column: Number(match[3]) };
}

/** Splits text at a 1-based line and column (columns count UTF-16 code units, as editors do). */
export function splitAtPosition(text: string, line: number, column: number): { prefix: string; suffix: string } {
  const lines = text.split("\n");
  if (line < 1 || line > lines.length) throw new Error(`line ${line} is outside the file (1..${lines.length})`);
  const lineText = lines[line - 1].replace(/\r$/, "");
  if (column < 1 || column > lineText.length + 1) throw new Error(`column ${column} is outside line ${line} (1..${lineText.length + 1})`);
  let offset = 0;
  for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
  offset += column - 1;
  return { prefix: text.slice(0, offset), suffix: text.slice(offset) };
}

/** Parses "file.ts:10-20" into a file and an inclusive 1-based line range; a bare path means the whole file. */
export function parseFileRange(spec: string): { file: string; startLine?: number; endLine?: number } {
  const match = /^(.*):(\d+)-(\d+)$/.exec(spec);
  if (!match) return { file: spec };
  const startLine = Number(match[2]);
  const endLine = Number(match[3]);
  if (startLine < 1 || endLine < startLine) throw new Error(`bad line range ${startLine}-${endLine}`);
  return { file: match[1], startLine, endLine };
}

export function linesOf(text: string, startLine?: number, endLine?: number): string {
  if (startLine === undefined) return text;
  const lines = text.split("\n");
  if (startLine > lines.length) throw new Error(`line ${startLine} is outside the file (1..${lines.length})`);
  return lines.slice(startLine - 1, endLine).join("\n");
}
