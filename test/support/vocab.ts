// The CodeLLaMA vocabulary as a converted GGUF carries it: LLaMA's 32000 SentencePiece pieces
// (taken from the llama-tokenizer-js package, which embeds them with LLaMA's BPE merge list)
// plus CodeLLaMA's 16 added tokens, with llama.cpp token types and BPE scores.

import llamaTokenizer from "llama-tokenizer-js";

/** llama.cpp's llama_token_type values (tokenizer.ggml.token_type). */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  BYTE: 6,
} as const;

export const CODELLAMA_TOKEN_IDS = {
  unk: 0,
  bos: 1,
  eos: 2,
  prefix: 32007,
  suffix: 32008,
  middle: 32009,
  eot: 32010,
} as const;

export const LLAMA_VOCAB_SIZE = 32000;
export const CODELLAMA_VOCAB_SIZE = 32016;

/** CodeLLaMA's added tokens: the four infilling markers among twelve unused slots. */
const FIM_TOKENS = new Map<number, string>([
  [CODELLAMA_TOKEN_IDS.prefix, "▁<PRE>"],
  [CODELLAMA_TOKEN_IDS.suffix, "▁<SUF>"],
  [CODELLAMA_TOKEN_IDS.middle, "▁<MID>"],
  [CODELLAMA_TOKEN_IDS.eot, "▁<EOT>"],
]);

const FIRST_BYTE_TOKEN = 3;
const LAST_BYTE_TOKEN = 258;
/** Score offset that puts pieces no merge produces (single characters) below every merged piece. */
const UNMERGED_SCORE_BASE = 1_000_000;

export interface Vocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
}

/**
 * Merge rank of each piece: the rank of the earliest merge whose result it is. llama-tokenizer-js
 * keys its merge map by "left right" and stores 2*rank+1 (the position of the pair in its flat
 * id list, plus one), so the rank is recovered as (value - 1) / 2.
 */
function mergeRanks(): Map<string, number> {
  const ranks = new Map<string, number>();
  for (const [pair, priority] of llamaTokenizer.merges) {
    const separator = pair.indexOf(" ");
    const merged = pair.slice(0, separator) + pair.slice(separator + 1);
    const rank = (priority - 1) / 2;
    const known = ranks.get(merged);
    if (known === undefined || rank < known) ranks.set(merged, rank);
  }
  return ranks;
}

function buildVocab(): Vocab {
  const pieces = llamaTokenizer.vocabById;
  if (pieces.length !== LLAMA_VOCAB_SIZE) throw new Error(`llama-tokenizer-js has ${pieces.length} pieces, expected ${LLAMA_VOCAB_SIZE}`);
  // Merge keys join two pieces with a space, so they are unambiguous only while no piece holds one.
  if (pieces.some((p) => p.includes(" "))) throw new Error("a LLaMA piece contains a space: merge keys are ambiguous");
  const ranks = mergeRanks();

  const tokens: string[] = [];
  const scores = new Float32Array(CODELLAMA_VOCAB_SIZE);
  const types = new Int32Array(CODELLAMA_VOCAB_SIZE);
  for (let id = 0; id < CODELLAMA_VOCAB_SIZE; id++) {
    if (id === CODELLAMA_TOKEN_IDS.unk) {
      tokens.push(pieces[id]!);
      types[id] = TokenType.UNKNOWN;
    } else if (id === CODELLAMA_TOKEN_IDS.bos || id === CODELLAMA_TOKEN_IDS.eos) {
      tokens.push(pieces[id]!);
      types[id] = TokenType.CONTROL;
    } else if (id >= FIRST_BYTE_TOKEN && id <= LAST_BYTE_TOKEN) {
      tokens.push(pieces[id]!);
      types[id] = TokenType.BYTE;
    } else if (id < LLAMA_VOCAB_SIZE) {
      const piece = pieces[id]!;
      tokens.push(piece);
      types[id] = TokenType.NORMAL;
      const rank = ranks.get(piece);
      // 0 - rank rather than -rank: the first merge scores +0, as in converted files, not -0.
      scores[id] = rank === undefined ? -(UNMERGED_SCORE_BASE + id) : 0 - rank;
    } else {
      const fim = FIM_TOKENS.get(id);
      tokens.push(fim ?? `<unused${id}>`);
      types[id] = fim === undefined ? TokenType.USER_DEFINED : TokenType.CONTROL;
    }
  }
  return { tokens, scores, types };
}

let cached: Vocab | undefined;

/** The CodeLLaMA vocabulary (32016 tokens); built once per process. Treat the result as read-only. */
export function codeLlamaVocab(): Vocab {
  cached ??= buildVocab();
  return cached;
}
