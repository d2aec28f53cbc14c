// The request that "Explain" sends to a CodeLLaMA-Instruct model: a system prompt and one user turn holding the
// code in a fenced block, with the language named when known.

export const EXPLAIN_SYSTEM_PROMPT =
  "You are a senior software engineer. Explain code clearly and concisely: what it does, how, and anything surprising. Answer in Markdown.";

export function explainRequest(code: string, language?: string, context?: string): { system: string; user: string } {
  const fence = code.includes("```") ? "````" : "```";
  const parts = [`Explain the following${language ? ` ${language}` : ""} code.`];
  if (context) parts.push(`It appears in this context:\n${fence}${language ?? ""}\n${context}\n${fence}`);
  parts.push(`${fence}${language ?? ""}\n${code}\n${fence}`);
  return { system: EXPLAIN_SYSTEM_PROMPT, user: parts.join("\n\n") };
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
