// The request that "Explain" sends to a CodeLLaMA-Instruct model: a system prompt and one user turn holding the
// code in a fenced block, with the language named when known, and optionally the lines around it so that the model
// knows what the names in it refer to. The engine wraps it in the chat template (<s>[INST] <<SYS>>...).

export const EXPLAIN_SYSTEM_PROMPT =
  "You are a senior software engineer. Explain code clearly and concisely: what it does, how, and anything surprising. Answer in Markdown.";

/** Stands for the selection inside its surrounding lines (the code itself follows in its own block). */
export const SELECTION_PLACEHOLDER = "[… the code to explain …]";

export function explainRequest(code: string, language?: string, context?: string): { system: string; user: string } {
  const fence = code.includes("```") || context?.includes("```") ? "````" : "```";
  const block = (text: string) => `${fence}${language ?? ""}\n${text}\n${fence}`;
  // The code to explain comes last, right before the answer: models attend most to what they read last.
  const parts = context ? [`Here is some${language ? ` ${language}` : ""} code, where ${SELECTION_PLACEHOLDER} marks a part of it:`, block(context)] : [];
  parts.push(`Explain the following${context ? ` part, which stands where ${SELECTION_PLACEHOLDER} is` : language ? ` ${language} code` : " code"}.`);
  parts.push(block(code));
  return { system: EXPLAIN_SYSTEM_PROMPT, user: parts.join("\n\n") };
}

/**
 * Up to `around` lines above and below the selected lines [startLine, endLine] (0-based, inclusive), with the
 * selection replaced by SELECTION_PLACEHOLDER; at most `maxChars` of them, dropping the lines farthest from the
 * selection first. Undefined when the selection has no lines around it.
 */
export function surroundingContext(text: string, startLine: number, endLine: number, around = 20, maxChars = 3000): string | undefined {
  const lines = text.split(/\r?\n/);
  const above = lines.slice(Math.max(0, startLine - around), startLine);
  const below = lines.slice(endLine + 1, endLine + 1 + around);
  let chars = [...above, ...below].reduce((sum, line) => sum + line.length + 1, 0);
  // Alternate sides so the kept context stays centred on the selection.
  while (chars > maxChars && (above.length > 0 || below.length > 0)) {
    const side = above.length >= below.length ? above : below;
    const dropped = side === above ? above.shift()! : below.pop()!;
    chars -= dropped.length + 1;
  }
  if (above.every((line) => line.trim() === "") && below.every((line) => line.trim() === "")) return undefined;
  return [...above, SELECTION_PLACEHOLDER, ...below].join("\n");
}

const LANGUAGES_BY_EXTENSION: Record<string, string> = {
  c: "c", h: "c", cc: "cpp", cpp: "cpp", hpp: "cpp", cs: "csharp", go: "go", java: "java", js: "javascript",
  jsx: "javascript", mjs: "javascript", ts: "typescript", tsx: "typescript", py: "python", rb: "ruby", rs: "rust",
  php: "php", sh: "bash", swift: "swift", kt: "kotlin", scala: "scala", lua: "lua", sql: "sql",
};

export function languageOfPath(path: string): string | undefined {
  const extension = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return extension ? LANGUAGES_BY_EXTENSION[extension] : undefined;
}

/** VS Code's language ids that are not what a Markdown fence (or a person) calls the language. */
const LANGUAGES_BY_ID: Record<string, string | undefined> = {
  typescriptreact: "tsx", javascriptreact: "jsx", shellscript: "bash", plaintext: undefined, "objective-c": "objc",
  "objective-cpp": "objcpp", jsonc: "json",
};

export function languageOfId(languageId: string): string | undefined {
  return languageId in LANGUAGES_BY_ID ? LANGUAGES_BY_ID[languageId] : languageId;
}
