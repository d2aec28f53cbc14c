// Completions already computed, by the prompt's prefix and suffix, so that going back to a place, or typing the
// characters a suggestion shows, needs no new request. As in llama.vscode: when the text typed since a cached
// suggestion was made is the start of that suggestion, the rest of it is served.
//
// The prefix and suffix of a 2,000-line file run to tens of kilobytes, and a request's strings are fresh ones each
// keystroke, so entries keep 64-bit hashes and lengths instead of the strings: an entry costs about its completion.
// A lookup hashes the suffix and the prefix once (one pass each, hashing the prefix running so that the hash of each
// of its last few hundred starts is known), then checks the entries with that suffix in constant time each plus a
// comparison of the typed characters. Two different texts of the same length share a 64-bit hash with odds of about
// one in 2^64 per pair.

interface Entry {
  key: string;
  suffixKey: string;
  prefixLength: number;
  prefixHash1: number;
  prefixHash2: number;
  completion: string;
}

const SEED1 = 0x811c9dc5;
const SEED2 = 0x9747b28c;

// Two independent 32-bit streams: FNV-1a, and a multiply-xorshift one. Each state depends on all characters so far,
// so the running state after i characters is the hash of the first i.
function step1(state: number, code: number): number {
  return Math.imul(state ^ code, 0x01000193);
}

function step2(state: number, code: number): number {
  const mixed = Math.imul(state ^ code, 0x5bd1e995);
  return mixed ^ (mixed >>> 15);
}

function hashKey(text: string): string {
  let h1 = SEED1;
  let h2 = SEED2;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = step1(h1, code);
    h2 = step2(h2, code);
  }
  return `${h1 >>> 0}.${h2 >>> 0}.${text.length}`;
}

export class CompletionCache {
  /** Entries by suffix and prefix; Map order is recency, least recently used first. */
  private readonly entries = new Map<string, Entry>();
  /** Entries by suffix alone, for the typed-through lookup. */
  private readonly bySuffix = new Map<string, Set<Entry>>();

  constructor(readonly capacity = 250) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a whole number >= 1, got ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.bySuffix.clear();
  }

  /** Caches a completion (an empty one too: "nothing to suggest here"), replacing one with the same prefix and suffix. */
  set(prefix: string, suffix: string, completion: string): void {
    const suffixKey = hashKey(suffix);
    let h1 = SEED1;
    let h2 = SEED2;
    for (let i = 0; i < prefix.length; i++) {
      const code = prefix.charCodeAt(i);
      h1 = step1(h1, code);
      h2 = step2(h2, code);
    }
    const entry: Entry = {
      key: `${suffixKey}/${h1 >>> 0}.${h2 >>> 0}.${prefix.length}`,
      suffixKey,
      prefixLength: prefix.length,
      prefixHash1: h1 >>> 0,
      prefixHash2: h2 >>> 0,
      completion,
    };
    this.remove(this.entries.get(entry.key));
    this.entries.set(entry.key, entry);
    let bucket = this.bySuffix.get(suffixKey);
    if (bucket === undefined) this.bySuffix.set(suffixKey, (bucket = new Set()));
    bucket.add(entry);
    while (this.entries.size > this.capacity) this.remove(this.entries.values().next().value);
  }

  /**
   * The cached completion for exactly this prefix and suffix (possibly ""); else, when the prefix is a cached prefix
   * followed by the start of its completion (the user typed part of the suggestion) and the suffix is the same, the
   * rest of that completion, from the entry with the longest such prefix that has something left. Undefined when
   * neither exists: nothing cached, the typed text diverged from the suggestion, or all of it was typed.
   * The entry used becomes the most recently used.
   */
  get(prefix: string, suffix: string): string | undefined {
    const bucket = this.bySuffix.get(hashKey(suffix));
    if (bucket === undefined) return undefined;
    // Only prefixes shorter by at most `reach` characters can be a cached prefix the user typed past.
    let reach = 0;
    for (const entry of bucket) {
      if (entry.prefixLength <= prefix.length) reach = Math.max(reach, Math.min(entry.completion.length, prefix.length - entry.prefixLength));
    }
    const from = prefix.length - reach;
    const hashes1 = new Uint32Array(reach + 1);
    const hashes2 = new Uint32Array(reach + 1);
    let h1 = SEED1;
    let h2 = SEED2;
    for (let i = 0; i <= prefix.length; i++) {
      if (i >= from) {
        hashes1[i - from] = h1;
        hashes2[i - from] = h2;
      }
      if (i === prefix.length) break;
      const code = prefix.charCodeAt(i);
      h1 = step1(h1, code);
      h2 = step2(h2, code);
    }
    let best: { entry: Entry; typed: number } | undefined;
    for (const entry of bucket) {
      const typed = prefix.length - entry.prefixLength;
      if (typed < 0 || typed > reach || typed > entry.completion.length) continue;
      if (best !== undefined && typed >= best.typed) continue;
      const at = entry.prefixLength - from;
      if (hashes1[at] !== entry.prefixHash1 || hashes2[at] !== entry.prefixHash2) continue;
      if (typed > 0 && (typed === entry.completion.length || !entry.completion.startsWith(prefix.slice(entry.prefixLength)))) continue;
      best = { entry, typed };
      if (typed === 0) break;
    }
    if (best === undefined) return undefined;
    this.entries.delete(best.entry.key);
    this.entries.set(best.entry.key, best.entry);
    return best.entry.completion.slice(best.typed);
  }

  private remove(entry: Entry | undefined): void {
    if (entry === undefined) return;
    this.entries.delete(entry.key);
    const bucket = this.bySuffix.get(entry.suffixKey);
    bucket?.delete(entry);
    if (bucket?.size === 0) this.bySuffix.delete(entry.suffixKey);
  }
}
