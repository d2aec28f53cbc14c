// SentencePiece BPE tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, matching llama.cpp's SPM
// tokenizer token for token: whitespace escaped as U+2581, the leading-space rule, highest-score-first merges
// (ties leftmost), byte fallback through <0xXX> tokens, and user-defined (and, on request, control) tokens split
// out of the text before BPE runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"

namespace pc {

using TokenId = int32_t;

enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

constexpr TokenId kNoToken = -1;

struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId unk = kNoToken;
  TokenId eot = kNoToken;      // end of infill (CodeLLaMA ▁<EOT>)
  TokenId fim_pre = kNoToken;  // ▁<PRE>
  TokenId fim_suf = kNoToken;  // ▁<SUF>
  TokenId fim_mid = kNoToken;  // ▁<MID>
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;
};

// Reads tokenizer.ggml.{model, tokens, scores, token_type, *_token_id, add_bos_token, add_eos_token,
// add_space_prefix}. FIM ids come from tokenizer.ggml.{prefix,suffix,middle,eot}_token_id, else
// tokenizer.ggml.fim_{pre,suf,mid}_token_id, else the tokens whose text is ▁<PRE>, ▁<SUF>, ▁<MID>, ▁<EOT> (made
// control tokens, as llama.cpp does with FIM tokens it finds by text). Absent keys take llama.cpp's SPM defaults:
// scores 0, types normal, unk/bos/eos 0/1/2, add_bos and add_space_prefix true, add_eos false.
// Throws GgufError for a model other than "llama", no tokens, arrays of different lengths, ids out of range, or
// anything else the Tokenizer would refuse.
Vocabulary readVocabulary(const GgufFile& file);

class Tokenizer {
 public:
  // Throws std::invalid_argument for an inconsistent vocabulary: no tokens, arrays of different lengths, an empty
  // or duplicate token text, a special id out of range, a byte token not spelled <0xXX>, a byte with no token,
  // add_bos/add_eos without the token. (readVocabulary reports the same problems as GgufError.)
  explicit Tokenizer(Vocabulary vocab);

  // llama.cpp's llama_tokenize. `add_special`: prepend BOS when vocab().add_bos and append EOS when
  // vocab().add_eos (llama.cpp ties both to this one flag; for CodeLLaMA it means "prepend BOS").
  // `parse_special`: also split out control tokens written literally in the text (user-defined tokens are always
  // split out, as llama.cpp does).
  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special = false) const;
  // The same tokenization without the space the leading-space rule puts before the start of the text: what
  // CodeLLaMA's infill suffix needs (Meta's encode_infilling). No BOS/EOS, no control tokens parsed.
  std::vector<TokenId> encodeNoLeadingSpace(std::string_view text) const;

  // Text of a token sequence. Control tokens give no text; the space the leading-space rule added to the first
  // piece of text (at the start, and after BOS or any special token) is removed, so decode(encode(t)) == t for
  // valid UTF-8 t without a literal U+2581 (which the escaping makes a space, as in SentencePiece). Invalid UTF-8
  // from byte tokens becomes U+FFFD. `at_text_start` false decodes a continuation (tokens generated after a
  // prompt, e.g. an infill middle, whose first space is text the model wrote): the first space is kept.
  std::string decode(const std::vector<TokenId>& tokens, bool at_text_start = true) const;
  // The raw bytes one token stands for (▁ turned back into a space, byte tokens as their byte, user-defined tokens
  // as their text, control/unknown/unused tokens as nothing). Throws std::out_of_range for an id outside the vocab.
  const std::string& tokenBytes(TokenId token) const;

  const Vocabulary& vocab() const { return vocab_; }
  int32_t size() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  bool hasInfill() const;  // PRE, SUF and MID all known
  bool isEndOfGeneration(TokenId token) const;  // EOS or EOT

 private:
  friend class StreamDecoder;
  std::vector<TokenId> encodeWithLeadingSpace(std::string_view text, bool add_special, bool parse_special,
                                              bool leading_space) const;
  // SentencePiece BPE of one run of plain text (no special tokens inside), appended to `out`.
  void encodeText(std::string_view text, bool space_prefix, std::vector<TokenId>& out) const;
  // Appends the bytes of `token` to `bytes`, dropping the leading-space rule's space while `at_text_start`.
  void appendTokenBytes(TokenId token, bool& at_text_start, std::string& bytes) const;
  TokenId findToken(std::string_view text) const;  // kNoToken when no token is spelled `text`

  // Token text -> id, open addressing with linear probing (id kNoToken: free slot). BPE looks up millions of byte
  // ranges per megabyte of text; this flat table of 8-byte slots, compared by hash first, needs no string built
  // per lookup and no pointer chasing, and takes a third off the whole tokenization compared with
  // std::unordered_map<std::string>.
  struct IndexSlot {
    uint32_t hash;
    TokenId id;
  };

  Vocabulary vocab_;
  std::vector<IndexSlot> token_index_;  // size a power of two, at least twice the vocabulary
  TokenId byte_tokens_[256];
  std::vector<std::string> token_bytes_;   // tokenBytes() of every id, computed once
  std::vector<TokenId> special_tokens_;    // control, user-defined and unknown ids, longest text first
  bool never_merged_ascii_[128];           // ASCII characters no token of two or more bytes contains
};

// Streams text out of a growing token sequence: returns only complete UTF-8 characters, holding back a partial
// multi-byte character (from byte tokens) until the rest arrives. Concatenating every push() and a final flush()
// equals Tokenizer::decode of the whole sequence.
class StreamDecoder {
 public:
  // `at_text_start` as for Tokenizer::decode: pass false when streaming a completion that continues a prompt.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool at_text_start = true);
  std::string push(TokenId token);
  std::string flush();  // whatever is held back, with invalid bytes replaced by U+FFFD

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;  // bytes of an incomplete UTF-8 character, held back
  bool at_text_start_;
};

}  // namespace pc
