// The completion cache: exact hits, serving the rest of a suggestion the user types through, LRU eviction, and
// agreement with a naive reference that keeps whole strings, on random edit sequences.
import { describe, expect, it } from "vitest";

import { CompletionCache } from "../../extension/core/completion-cache";

const PREFIX = "def mean(xs):\n    total = ";
const SUFFIX = "\n    return total / len(xs)\n";

describe("CompletionCache", () => {
  it("returns an exact hit, and nothing for an unknown context", () => {
    const cache = new CompletionCache();
    cache.set(PREFIX, SUFFIX, "sum(xs)");
    expect(cache.get(PREFIX, SUFFIX)).toBe("sum(xs)");
    expect(cache.get(PREFIX, SUFFIX + " ")).toBeUndefined();
    expect(cache.get(PREFIX + "x", "other")).toBeUndefined();
    expect(cache.get("def mean(xs):\n    total  ", SUFFIX)).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it("serves the rest of a suggestion while the user types through it", () => {
    const cache = new CompletionCache();
    cache.set(PREFIX, SUFFIX, "sum(xs)");
    expect(cache.get(PREFIX + "s", SUFFIX)).toBe("um(xs)");
    expect(cache.get(PREFIX + "sum(", SUFFIX)).toBe("xs)");
    expect(cache.get(PREFIX + "sum(xs", SUFFIX)).toBe(")");
    // All of it typed: nothing remains, ask the model again.
    expect(cache.get(PREFIX + "sum(xs)", SUFFIX)).toBeUndefined();
    // Typed text that diverges from the suggestion.
    expect(cache.get(PREFIX + "su(", SUFFIX)).toBeUndefined();
    expect(cache.get(PREFIX + "x", SUFFIX)).toBeUndefined();
    // The suffix changed (e.g. an auto-closed bracket): no hit.
    expect(cache.get(PREFIX + "sum(", ")" + SUFFIX)).toBeUndefined();
  });

  it("serves multi-line suggestions through line breaks and indentation", () => {
    const cache = new CompletionCache();
    const prefix = "int main(void) {\n    ";
    const suffix = "\n}\n";
    cache.set(prefix, suffix, "int x = 1;\n    return x;");
    expect(cache.get(prefix + "int x = 1;\n", suffix)).toBe("    return x;");
    expect(cache.get(prefix + "int x = 1;\n    ret", suffix)).toBe("urn x;");
    expect(cache.get(prefix + "int x = 1;\n\tret", suffix)).toBeUndefined();
  });

  it("prefers an exact hit, then the closest cached prefix that has something left", () => {
    const cache = new CompletionCache();
    cache.set(PREFIX, SUFFIX, "sum(xs)");
    cache.set(PREFIX + "sum(", SUFFIX, "x for x in xs)");
    expect(cache.get(PREFIX + "sum(", SUFFIX)).toBe("x for x in xs)");
    expect(cache.get(PREFIX + "sum(x", SUFFIX)).toBe(" for x in xs)");
    // The closer entry diverges; the older one still matches.
    expect(cache.get(PREFIX + "sum(xs", SUFFIX)).toBe(")");
    // The closer entry was typed through completely; the older one has something left.
    cache.set(PREFIX + "s", SUFFIX, "u");
    expect(cache.get(PREFIX + "su", SUFFIX)).toBe("m(xs)");
  });

  it("returns a cached empty completion on an exact hit only", () => {
    const cache = new CompletionCache();
    cache.set(PREFIX, SUFFIX, "");
    expect(cache.get(PREFIX, SUFFIX)).toBe("");
    expect(cache.get(PREFIX + "a", SUFFIX)).toBeUndefined();
  });

  it("replaces an entry with the same prefix and suffix", () => {
    const cache = new CompletionCache();
    cache.set(PREFIX, SUFFIX, "sum(xs)");
    cache.set(PREFIX, SUFFIX, "0");
    expect(cache.size).toBe(1);
    expect(cache.get(PREFIX, SUFFIX)).toBe("0");
    expect(cache.get(PREFIX + "s", SUFFIX)).toBeUndefined();
  });

  it("keeps apart contexts that differ only in where the prefix ends and the suffix starts", () => {
    const cache = new CompletionCache();
    cache.set("ab", "c", "1");
    cache.set("a", "bc", "2");
    expect(cache.get("ab", "c")).toBe("1");
    expect(cache.get("a", "bc")).toBe("2");
    expect(cache.get("", "abc")).toBeUndefined();
  });

  it("handles empty prefixes and suffixes (cursor at the start or the end of the file)", () => {
    const cache = new CompletionCache();
    cache.set("", "int main(void);\n", "#include <stdio.h>\n");
    cache.set("print('done')\n", "", "sys.exit(0)");
    expect(cache.get("", "int main(void);\n")).toBe("#include <stdio.h>\n");
    expect(cache.get("#incl", "int main(void);\n")).toBe("ude <stdio.h>\n");
    expect(cache.get("print('done')\nsys.", "")).toBe("exit(0)");
  });

  it("keeps CRLF and tabs exact", () => {
    const cache = new CompletionCache();
    cache.set("if ok {\r\n\t", "\r\n}", "fmt.Println(ok)\r\n\treturn");
    expect(cache.get("if ok {\r\n\tfmt.Println(ok)\r\n", "\r\n}")).toBe("\treturn");
    expect(cache.get("if ok {\r\n\tfmt.Println(ok)\n", "\r\n}")).toBeUndefined();
    expect(cache.get("if ok {\n\t", "\r\n}")).toBeUndefined();
  });

  it("evicts the least recently used entry, a hit counting as a use", () => {
    const cache = new CompletionCache(3);
    cache.set("a", "", "1");
    cache.set("b", "", "2");
    cache.set("c", "", "3");
    expect(cache.get("a", "")).toBe("1");
    cache.set("d", "", "4");
    expect(cache.size).toBe(3);
    expect(cache.get("b", "")).toBeUndefined();
    expect(cache.get("a", "")).toBe("1");
    expect(cache.get("c", "")).toBe("3");
    // A typed-through hit uses the entry too.
    cache.set("x", "s", "yz");
    expect(cache.get("dy", "")).toBeUndefined();
    expect(cache.get("xy", "s")).toBe("z");
    cache.set("e", "", "5"); // evicts the least recently used: "d"
    expect(cache.get("d", "")).toBeUndefined();
    expect(cache.get("xy", "s")).toBe("z");
  });

  it("defaults to 250 entries and clears", () => {
    const cache = new CompletionCache();
    expect(cache.capacity).toBe(250);
    for (let i = 0; i < 300; i++) cache.set(`line ${i}\n`, "", `value${i}`);
    expect(cache.size).toBe(250);
    expect(cache.get("line 49\n", "")).toBeUndefined();
    expect(cache.get("line 50\n", "")).toBe("value50");
    expect(cache.get("line 299\nval", "")).toBe("ue299");
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get("line 299\n", "")).toBeUndefined();
    expect(() => new CompletionCache(0)).toThrow(RangeError);
  });

  it("answers quickly for a 2,000-line file with a full cache", () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `    const value${i} = compute(${i}, "some text here");`);
    const prefix = lines.slice(0, 1500).join("\n") + "\n    const x = ";
    const suffix = "\n" + lines.slice(1500).join("\n");
    const cache = new CompletionCache();
    // A full cache, half of it at this very place (as while typing here), each with a long completion.
    for (let i = 0; i < 125; i++) cache.set(prefix.slice(0, prefix.length - i), suffix, "x".repeat(400));
    for (let i = 0; i < 125; i++) cache.set(`${i}` + prefix, suffix + i, "y".repeat(400));
    const started = performance.now();
    for (let i = 0; i < 50; i++) cache.get(prefix + "xxxxx", suffix);
    const perLookup = (performance.now() - started) / 50;
    expect(cache.get(prefix + "xxxxx", suffix)).toBe("x".repeat(395));
    expect(perLookup).toBeLessThan(20);
  });

  it("agrees with a naive reference on random edit sequences", () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const alphabet = "ab(\n ";
    const word = (n: number) => Array.from({ length: n }, () => alphabet[random(alphabet.length)]).join("");

    class Reference {
      entries: Array<{ prefix: string; suffix: string; completion: string }> = [];
      constructor(readonly capacity: number) {}
      set(prefix: string, suffix: string, completion: string) {
        this.entries = this.entries.filter((e) => !(e.prefix === prefix && e.suffix === suffix));
        this.entries.push({ prefix, suffix, completion });
        if (this.entries.length > this.capacity) this.entries.shift();
      }
      get(prefix: string, suffix: string) {
        let best: { index: number; typed: number } | undefined;
        this.entries.forEach((e, index) => {
          if (e.suffix !== suffix || !prefix.startsWith(e.prefix)) return;
          const typed = prefix.length - e.prefix.length;
          if (typed > e.completion.length || !e.completion.startsWith(prefix.slice(e.prefix.length))) return;
          if (typed > 0 && typed === e.completion.length) return;
          if (best === undefined || typed < best.typed) best = { index, typed };
        });
        if (best === undefined) return undefined;
        const [entry] = this.entries.splice(best.index, 1);
        this.entries.push(entry);
        return entry.completion.slice(best.typed);
      }
    }

    const cache = new CompletionCache(8);
    const reference = new Reference(8);
    const suffixes = ["", ")", "\n}", "b"];
    let prefix = "";
    let hits = 0;
    for (let step = 0; step < 5000; step++) {
      const suffix = suffixes[random(suffixes.length)];
      const action = random(4);
      if (action === 0) prefix += word(1 + random(3));
      else if (action === 1) prefix = prefix.slice(0, Math.max(0, prefix.length - random(4)));
      if (action === 2) {
        const completion = word(random(6));
        cache.set(prefix, suffix, completion);
        reference.set(prefix, suffix, completion);
      } else {
        const expected = reference.get(prefix, suffix);
        expect(cache.get(prefix, suffix)).toBe(expected);
        if (expected !== undefined) hits++;
      }
      expect(cache.size).toBe(reference.entries.length);
      if (prefix.length > 40) prefix = prefix.slice(0, 10);
    }
    expect(hits).toBeGreaterThan(200);
  });
});
