// The Explain request: the code in a fence named by its language, the lines around it with the selection marked, a
// context that stays centred and within its character budget, and VS Code's language ids as fence names.
import { describe, expect, it } from "vitest";

import {
  EXPLAIN_SYSTEM_PROMPT,
  explainRequest,
  languageOfId,
  SELECTION_PLACEHOLDER,
  surroundingContext,
} from "../../extension/core/explain-prompt";

const FILE = Array.from({ length: 60 }, (_, i) => `line ${i}`).join("\n");

describe("explainRequest", () => {
  it("puts the code in a fence named by its language, under the system prompt", () => {
    const request = explainRequest("x = 1", "python");
    expect(request.system).toBe(EXPLAIN_SYSTEM_PROMPT);
    expect(request.user).toBe("Explain the following python code.\n\n```python\nx = 1\n```");
  });

  it("puts the surrounding lines first, with the placeholder where the code stands, and the code last", () => {
    const request = explainRequest("b()", "typescript", `a()\n${SELECTION_PLACEHOLDER}\nc()`);
    expect(request.user).toBe(
      `Here is some typescript code, where ${SELECTION_PLACEHOLDER} marks a part of it:\n\n\`\`\`typescript\na()\n${SELECTION_PLACEHOLDER}\nc()\n\`\`\`\n\n` +
        `Explain the following part, which stands where ${SELECTION_PLACEHOLDER} is.\n\n\`\`\`typescript\nb()\n\`\`\``,
    );
  });

  it("uses a longer fence when the code holds one, so the block is not closed early", () => {
    const code = 'doc = """\n```js\nx\n```\n"""';
    const request = explainRequest(code);
    expect(request.user).toBe(`Explain the following code.\n\n\`\`\`\`\n${code}\n\`\`\`\``);
  });
});

describe("surroundingContext", () => {
  it("takes the lines above and below the selection, with the selection replaced by the placeholder", () => {
    const context = surroundingContext(FILE, 30, 32, 3)!;
    expect(context.split("\n")).toEqual(["line 27", "line 28", "line 29", SELECTION_PLACEHOLDER, "line 33", "line 34", "line 35"]);
  });

  it("stops at the edges of the file", () => {
    expect(surroundingContext(FILE, 0, 1, 2)!.split("\n")).toEqual([SELECTION_PLACEHOLDER, "line 2", "line 3"]);
    expect(surroundingContext(FILE, 58, 59, 2)!.split("\n")).toEqual(["line 56", "line 57", SELECTION_PLACEHOLDER]);
  });

  it("drops the farthest lines first to stay within the character budget, keeping it centred", () => {
    const context = surroundingContext(FILE, 30, 30, 10, 39)!;
    const lines = context.split("\n");
    expect(context.length - SELECTION_PLACEHOLDER.length - 1).toBeLessThanOrEqual(39);
    const at = lines.indexOf(SELECTION_PLACEHOLDER);
    expect(lines.slice(0, at)).toEqual(["line 28", "line 29"]);
    expect(lines.slice(at + 1)).toEqual(["line 31", "line 32"]);
  });

  it("gives nothing when the selection is the whole file or only blank lines surround it", () => {
    expect(surroundingContext("a\nb", 0, 1)).toBeUndefined();
    expect(surroundingContext("\n\nx = 1\n\n", 2, 2)).toBeUndefined();
  });

  it("reads CRLF files by lines too", () => {
    expect(surroundingContext("a\r\nb\r\nc", 1, 1)).toBe(`a\n${SELECTION_PLACEHOLDER}\nc`);
  });
});

describe("languageOfId", () => {
  it("names fences as Markdown does, not as VS Code's ids", () => {
    expect(languageOfId("python")).toBe("python");
    expect(languageOfId("typescriptreact")).toBe("tsx");
    expect(languageOfId("shellscript")).toBe("bash");
    expect(languageOfId("plaintext")).toBeUndefined();
  });
});
