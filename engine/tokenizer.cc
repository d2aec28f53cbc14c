// SentencePiece BPE as llama.cpp runs it for "llama" vocabularies (src/llama-vocab.cpp: tokenizer_st_partition,
// the SPM branch of llama_vocab::impl::tokenize, llm_tokenizer_spm_session, token_to_piece). Every rule below that
// could have been chosen differently names the llama.cpp behaviour it mirrors, because token-for-token agreement
// with llama.cpp is what the parity tests check.
#include "engine/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace pc {
namespace {

constexpr std::string_view kEscapedSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space "▁"
constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// ---------------------------------------------------------------------------------------------------------------
// Encoding

// Control, user-defined and unknown tokens are the ones llama.cpp splits out of raw text before BPE
// (its cache_special_tokens); the same three reset the leading-space rule.
bool isSpecialType(TokenType type) {
  return type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown;
}

// Length of the UTF-8 character starting with `first_byte`, judged from its high nibble alone, as llama.cpp's
// unicode_len_utf8: a stray continuation byte counts as a one-byte character and a lead byte claims its full
// length even when the following bytes are not continuations (the caller clamps it to the bytes left). Invalid
// UTF-8 is thus cut into the same symbols llama.cpp cuts it into.
size_t symbolLength(uint8_t first_byte) {
  static constexpr uint8_t kLengthByHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengthByHighNibble[first_byte >> 4];
}

// A run of the input between special tokens, or one special token split out of it.
struct Fragment {
  TokenId token;  // kNoToken for plain text
  size_t offset;  // plain text: where the run lies in the input
  size_t length;
};

// llama.cpp's tokenizer_st_partition: for each special token in turn (longest text first), every occurrence in
// every still-plain run is cut out. User-defined tokens are always cut out; control and unknown tokens only when
// `parse_special`. (llama.cpp's LSTRIP/RSTRIP attributes, which would also swallow spaces next to a token, are set
// only for jina/phi-3/modern-bert model names, none of which is a CodeLLaMA vocabulary.)
std::vector<Fragment> splitOutSpecialTokens(std::string_view text, const Vocabulary& vocab,
                                            const std::vector<TokenId>& special_tokens, bool parse_special) {
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> split;
  for (TokenId special : special_tokens) {
    if (!parse_special && vocab.types[special] != TokenType::UserDefined) continue;
    const std::string& needle = vocab.tokens[special];
    split.clear();
    for (const Fragment& fragment : fragments) {
      if (fragment.token != kNoToken) {
        split.push_back(fragment);
        continue;
      }
      const size_t end = fragment.offset + fragment.length;
      const std::string_view up_to_end = text.substr(0, end);
      size_t start = fragment.offset;
      for (size_t match; (match = up_to_end.find(needle, start)) != std::string_view::npos;
           start = match + needle.size()) {
        if (match > start) split.push_back({kNoToken, start, match - start});
        split.push_back({special, match, needle.size()});
      }
      if (start < end) split.push_back({kNoToken, start, end - start});
    }
    fragments.swap(split);
  }
  return fragments;
}

// A piece of the escaped text in the merge list: llama.cpp's llm_symbol. Merged-away symbols keep length 0.
struct Symbol {
  int32_t prev;
  int32_t next;  // -1 at the ends
  uint32_t offset;
  uint32_t length;
  TokenId token;  // set once the symbol is the product of a merge
};

// Two neighbouring symbols whose concatenation is a vocabulary token: llama.cpp's llm_bigram_spm.
struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  uint32_t length;  // of the concatenation; a mismatch later means the bigram went stale
  TokenId token;
};

// Orders the max-heap: highest score first, ties to the leftmost pair (llm_bigram_spm::comparator).
struct LowerMergePriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Decoding

// Length of the well-formed UTF-8 sequence a byte starts (0: it cannot start one) and the range its second byte
// must lie in (Unicode table 3-7; later bytes are always 80..BF).
struct Utf8Lead {
  uint8_t length;
  uint8_t second_min;
  uint8_t second_max;
};

Utf8Lead utf8Lead(uint8_t byte) {
  if (byte < 0x80) return {1, 0, 0};
  if (byte < 0xC2) return {0, 0, 0};
  if (byte < 0xE0) return {2, 0x80, 0xBF};
  if (byte == 0xE0) return {3, 0xA0, 0xBF};
  if (byte == 0xED) return {3, 0x80, 0x9F};  // no UTF-16 surrogates
  if (byte < 0xF0) return {3, 0x80, 0xBF};
  if (byte == 0xF0) return {4, 0x90, 0xBF};
  if (byte < 0xF4) return {4, 0x80, 0xBF};
  if (byte == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

// Removes the decodable front of `bytes` and returns it as valid UTF-8: well-formed characters as they are, each
// maximal ill-formed subsequence as one U+FFFD (the Unicode/WHATWG practice, which is also what V8 does when the
// addon hands it bytes). A character that is incomplete but valid so far stays in `bytes`, unless `final`.
// Because the held-back tail always starts a character, decoding in pieces gives the same text as decoding whole.
std::string takeUtf8(std::string& bytes, bool final) {
  std::string text;
  text.reserve(bytes.size());
  size_t start = 0;
  while (start < bytes.size()) {
    const Utf8Lead lead = utf8Lead(static_cast<uint8_t>(bytes[start]));
    if (lead.length == 0) {
      text += kReplacementCharacter;
      ++start;
      continue;
    }
    size_t length = 1;
    while (length < lead.length && start + length < bytes.size()) {
      const uint8_t byte = static_cast<uint8_t>(bytes[start + length]);
      const uint8_t min = length == 1 ? lead.second_min : 0x80;
      const uint8_t max = length == 1 ? lead.second_max : 0xBF;
      if (byte < min || byte > max) break;
      ++length;
    }
    if (length == lead.length) {
      text.append(bytes, start, length);
    } else if (start + length == bytes.size() && !final) {
      break;
    } else {
      text += kReplacementCharacter;
    }
    start += length;
  }
  bytes.erase(0, start);
  return text;
}

uint32_t hashText(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;  // 64-bit FNV-1a
  for (char c : text) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<uint32_t>(hash ^ (hash >> 32));
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0x0A>" -> 10; -1 when the text is not a byte token's spelling.
int byteTokenValue(const std::string& text) {
  if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
  const int high = hexDigit(text[3]);
  const int low = hexDigit(text[4]);
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

// What a token contributes to decoded text: llama.cpp's token_to_piece with special=false. Normal tokens with ▁
// unescaped, byte tokens as their byte, user-defined tokens verbatim. Control and unknown tokens give nothing (so
// <unk> decodes to "", not SentencePiece's " ⁇ "), and so do unused and undefined ones, which llama.cpp's SPM
// branch suppresses "like CONTROL tokens".
std::string bytesOfToken(const std::string& text, TokenType type) {
  switch (type) {
    case TokenType::Normal: {
      std::string bytes;
      bytes.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        if (text.compare(i, kEscapedSpace.size(), kEscapedSpace) == 0) {
          bytes += ' ';
          i += kEscapedSpace.size();
        } else {
          bytes += text[i++];
        }
      }
      return bytes;
    }
    case TokenType::Byte:
      return std::string(1, static_cast<char>(byteTokenValue(text)));
    case TokenType::UserDefined:
      return text;
    default:
      return {};
  }
}

// Spelling of the token llama.cpp's byte_to_token picks for `byte` first.
std::string byteTokenSpelling(uint8_t byte) {
  char spelled[7];
  std::snprintf(spelled, sizeof spelled, "<0x%02X>", byte);
  return spelled;
}

// The invariants the Tokenizer relies on; throws std::invalid_argument naming the first one broken. Every byte
// needs a token (llama.cpp would fail only once a text needs it; refusing at load is the clearer error).
void checkVocabulary(const Vocabulary& vocab) {
  const size_t count = vocab.tokens.size();
  if (count == 0) throw std::invalid_argument("the vocabulary has no tokens");
  if (count > static_cast<size_t>(std::numeric_limits<TokenId>::max())) {
    throw std::invalid_argument("the vocabulary has too many tokens");
  }
  if (vocab.scores.size() != count || vocab.types.size() != count) {
    throw std::invalid_argument("vocabulary arrays differ in length: " + std::to_string(count) + " tokens, " +
                                std::to_string(vocab.scores.size()) + " scores, " +
                                std::to_string(vocab.types.size()) + " token types");
  }
  const std::pair<const char*, TokenId> special_ids[] = {
      {"BOS", vocab.bos},     {"EOS", vocab.eos},     {"UNK", vocab.unk},     {"EOT", vocab.eot},
      {"PRE", vocab.fim_pre}, {"SUF", vocab.fim_suf}, {"MID", vocab.fim_mid},
  };
  for (const auto& [name, id] : special_ids) {
    if (id != kNoToken && (id < 0 || static_cast<size_t>(id) >= count)) {
      throw std::invalid_argument(std::string(name) + " token id " + std::to_string(id) + " is outside the " +
                                  std::to_string(count) + "-token vocabulary");
    }
  }
  // llama.cpp refuses these at load time too (check_add_special_token).
  if (vocab.add_bos && vocab.bos == kNoToken) throw std::invalid_argument("add_bos is set but there is no BOS");
  if (vocab.add_eos && vocab.eos == kNoToken) throw std::invalid_argument("add_eos is set but there is no EOS");

  std::unordered_map<std::string_view, TokenId> ids;
  ids.reserve(count);
  for (size_t id = 0; id < count; ++id) {
    const std::string& text = vocab.tokens[id];
    if (text.empty()) throw std::invalid_argument("token " + std::to_string(id) + " has empty text");
    const auto [existing, inserted] = ids.emplace(text, static_cast<TokenId>(id));
    if (!inserted) {
      // Current llama.cpp refuses such a vocabulary the same way (older builds silently kept the last id).
      throw std::invalid_argument("duplicate token '" + text + "' has ids " + std::to_string(existing->second) +
                                  " and " + std::to_string(id));
    }
    if (vocab.types[id] == TokenType::Byte && byteTokenValue(text) < 0) {
      throw std::invalid_argument("byte token " + std::to_string(id) + " '" + text + "' is not spelled <0xXX>");
    }
  }
  for (int byte = 0; byte < 256; ++byte) {
    const std::string spelled = byteTokenSpelling(static_cast<uint8_t>(byte));
    if (ids.count(spelled) == 0 && ids.count(std::string(1, static_cast<char>(byte))) == 0) {
      throw std::invalid_argument("the vocabulary has no byte token " + spelled);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer

Tokenizer::Tokenizer(Vocabulary vocab) : vocab_(std::move(vocab)) {
  checkVocabulary(vocab_);
  const size_t count = vocab_.tokens.size();
  size_t slot_count = 1;
  while (slot_count < 2 * count) slot_count *= 2;
  token_index_.assign(slot_count, IndexSlot{0, kNoToken});
  token_bytes_.reserve(count);
  std::fill(std::begin(never_merged_ascii_), std::end(never_merged_ascii_), true);
  for (TokenId id = 0; id < static_cast<TokenId>(count); ++id) {
    const std::string& text = vocab_.tokens[id];
    const uint32_t hash = hashText(text);
    size_t slot = hash & (slot_count - 1);
    while (token_index_[slot].id != kNoToken) slot = (slot + 1) & (slot_count - 1);
    token_index_[slot] = {hash, id};
    if (text.size() > 1) {
      for (char c : text) {
        if (static_cast<uint8_t>(c) < 128) never_merged_ascii_[static_cast<uint8_t>(c)] = false;
      }
    }
    token_bytes_.push_back(bytesOfToken(text, vocab_.types[id]));
    if (isSpecialType(vocab_.types[id])) special_tokens_.push_back(id);
  }
  // llama.cpp's byte_to_token: the token spelled "<0xXX>" (upper-case hex), else the one-character token.
  for (int byte = 0; byte < 256; ++byte) {
    const TokenId spelled = findToken(byteTokenSpelling(static_cast<uint8_t>(byte)));
    const char as_character = static_cast<char>(byte);
    byte_tokens_[byte] = spelled != kNoToken ? spelled : findToken(std::string_view(&as_character, 1));
  }
  // Longest first, so that a token containing another is cut out whole. llama.cpp's std::sort leaves tokens of
  // equal length in an unspecified order; a stable sort keeps them by id (it matters only if two equal-length
  // special tokens could overlap in a text, which none of the CodeLLaMA ones can).
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(), [this](TokenId a, TokenId b) {
    return vocab_.tokens[a].size() > vocab_.tokens[b].size();
  });
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  return encodeWithLeadingSpace(text, add_special, parse_special, /*leading_space=*/true);
}

// llama.cpp has no such call; node-llama-cpp's tokenize(text, false, "trimLeadingSpace") gets the same tokens by
// tokenizing "\n" + text and dropping the tokens of "\n" (▁ and <0x0A>, which merge with nothing), except that
// it returns a text that itself starts with "\n" tokenized whole, leading ▁ included, where this (like Meta's
// encode_infilling, HF's CodeLlamaTokenizer and the golden of llama.cpp issue #3503) gives no ▁.
std::vector<TokenId> Tokenizer::encodeNoLeadingSpace(std::string_view text) const {
  return encodeWithLeadingSpace(text, /*add_special=*/false, /*parse_special=*/false, /*leading_space=*/false);
}

// The SPM branch of llama_vocab::impl::tokenize. The leading-space rule: a run of plain text gets a space in
// front when it starts the input or follows a special token (llama.cpp's is_prev_special, which starts out true;
// `leading_space` false starts it out false).
std::vector<TokenId> Tokenizer::encodeWithLeadingSpace(std::string_view text, bool add_special, bool parse_special,
                                                       bool leading_space) const {
  std::vector<TokenId> tokens;
  bool follows_special = leading_space;
  if (add_special && vocab_.add_bos) {
    tokens.push_back(vocab_.bos);
    follows_special = true;
  }
  for (const Fragment& fragment : splitOutSpecialTokens(text, vocab_, special_tokens_, parse_special)) {
    if (fragment.token != kNoToken) {
      tokens.push_back(fragment.token);
      follows_special = true;
    } else {
      encodeText(text.substr(fragment.offset, fragment.length), vocab_.add_space_prefix && follows_special, tokens);
      follows_special = false;
    }
  }
  if (add_special && vocab_.add_eos) tokens.push_back(vocab_.eos);
  return tokens;
}

// llm_tokenizer_spm_session::tokenize. Every pair of neighbouring symbols whose concatenation is in the vocabulary
// (any token type, as in llama.cpp) is a candidate merge; the best-scoring one is merged, its new neighbours become
// candidates, and so on. Stale candidates are recognised by their length no longer matching.
void Tokenizer::encodeText(std::string_view text, bool space_prefix, std::vector<TokenId>& out) const {
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 4 + kEscapedSpace.size());
  if (space_prefix) escaped += kEscapedSpace;
  for (char c : text) {
    if (c == ' ') {
      escaped += kEscapedSpace;
    } else {
      escaped += c;
    }
  }
  if (escaped.size() >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw std::length_error("text too long to tokenize in one piece");
  }

  std::vector<Symbol> symbols;
  symbols.reserve(escaped.size());
  for (size_t offset = 0; offset < escaped.size();) {
    const size_t length = std::min(symbolLength(static_cast<uint8_t>(escaped[offset])), escaped.size() - offset);
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, index + 1, static_cast<uint32_t>(offset), static_cast<uint32_t>(length), kNoToken});
    offset += length;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<Bigram, std::vector<Bigram>, LowerMergePriority> candidates;
  const std::string_view escaped_view = escaped;
  auto addCandidate = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t length = symbols[left].length + symbols[right].length;
    const TokenId token = findToken(escaped_view.substr(symbols[left].offset, length));
    if (token != kNoToken) candidates.push({left, right, vocab_.scores[token], length, token});
  };
  // llama.cpp seeds one queue with every pair of the text. Here the queue is seeded and drained one stretch at a
  // time, stretches being separated by a symbol that is an ASCII character no longer token contains ("\n" in LLaMA
  // vocabularies). Such a symbol never merges, so no candidate crosses it and the merges on either side cannot
  // influence each other: each stretch undergoes exactly the merges, in the same order, that the global queue
  // would give it, while the queue stays small (source code tokenizes twice as fast).
  const auto symbol_count = static_cast<int32_t>(symbols.size());
  auto isBarrier = [&](const Symbol& symbol) {
    const auto byte = static_cast<uint8_t>(escaped[symbol.offset]);
    return symbol.length == 1 && byte < 128 && never_merged_ascii_[byte];
  };
  for (int32_t begin = 0; begin < symbol_count;) {
    int32_t end = begin;
    while (end < symbol_count && !isBarrier(symbols[end])) ++end;
    for (int32_t right = begin + 1; right < end; ++right) addCandidate(right - 1, right);
    while (!candidates.empty()) {
      const Bigram best = candidates.top();
      candidates.pop();
      Symbol& left = symbols[best.left];
      Symbol& right = symbols[best.right];
      if (left.length == 0 || right.length == 0 || left.length + right.length != best.length) continue;
      left.length = best.length;
      left.token = best.token;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = best.left;
      addCandidate(left.prev, best.left);
      addCandidate(best.left, left.next);
    }
    begin = end + 1;
  }

  // llama.cpp's resegment: a symbol that is a token is emitted as such, anything else as its bytes. Merged symbols
  // are always tokens (a pair is merged only when its concatenation is one), so llama.cpp's rev_merge lookup, which
  // only symbols that are not tokens would reach, never finds anything and is left out.
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const Symbol& symbol = symbols[i];
    if (symbol.token != kNoToken) {
      out.push_back(symbol.token);
      continue;
    }
    const TokenId token = findToken(escaped_view.substr(symbol.offset, symbol.length));
    if (token != kNoToken) {
      out.push_back(token);
      continue;
    }
    for (uint32_t k = 0; k < symbol.length; ++k) {
      out.push_back(byte_tokens_[static_cast<uint8_t>(escaped[symbol.offset + k])]);
    }
  }
}

TokenId Tokenizer::findToken(std::string_view text) const {
  const uint32_t hash = hashText(text);
  const size_t mask = token_index_.size() - 1;
  for (size_t slot = hash & mask; token_index_[slot].id != kNoToken; slot = (slot + 1) & mask) {
    const IndexSlot& entry = token_index_[slot];
    if (entry.hash == hash && vocab_.tokens[entry.id] == text) return entry.id;
  }
  return kNoToken;
}

const std::string& Tokenizer::tokenBytes(TokenId token) const {
  if (token < 0 || token >= size()) {
    throw std::out_of_range("token id " + std::to_string(token) + " is outside the " + std::to_string(size()) +
                            "-token vocabulary");
  }
  return token_bytes_[token];
}

// The inverse of the leading-space rule, applied wherever encode applies the rule: the first text after the start
// or after a special token loses one leading space. llama.cpp's detokenize differs: it strips that space only from
// the very first token (with remove_special it skips a leading BOS but then keeps the space, and it never strips
// after other special tokens), so llama_detokenize(llama_tokenize(t, add_special=true)) == " " + t for a t not
// starting with a special token; unparse_special=true would also print control tokens' text, which we never do.
void Tokenizer::appendTokenBytes(TokenId token, bool& at_text_start, std::string& bytes) const {
  const std::string& piece = tokenBytes(token);
  const TokenType type = vocab_.types[token];
  if (type == TokenType::Normal || type == TokenType::Byte) {
    const bool drop_space = at_text_start && vocab_.add_space_prefix && !piece.empty() && piece[0] == ' ';
    bytes.append(piece, drop_space ? 1 : 0, std::string::npos);
    at_text_start = false;
  } else if (isSpecialType(type)) {
    bytes += piece;
    at_text_start = true;
  }
}

std::string Tokenizer::decode(const std::vector<TokenId>& tokens, bool at_text_start) const {
  std::string bytes;
  for (TokenId token : tokens) appendTokenBytes(token, at_text_start, bytes);
  return takeUtf8(bytes, /*final=*/true);
}

bool Tokenizer::hasInfill() const {
  return vocab_.fim_pre != kNoToken && vocab_.fim_suf != kNoToken && vocab_.fim_mid != kNoToken;
}

bool Tokenizer::isEndOfGeneration(TokenId token) const {
  return token != kNoToken && (token == vocab_.eos || token == vocab_.eot);
}

// ---------------------------------------------------------------------------------------------------------------
// StreamDecoder

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool at_text_start)
    : tokenizer_(tokenizer), at_text_start_(at_text_start) {}

std::string StreamDecoder::push(TokenId token) {
  tokenizer_.appendTokenBytes(token, at_text_start_, pending_);
  return takeUtf8(pending_, /*final=*/false);
}

std::string StreamDecoder::flush() { return takeUtf8(pending_, /*final=*/true); }

// ---------------------------------------------------------------------------------------------------------------
// Reading a vocabulary from GGUF metadata (llama_vocab::impl::load, SPM parts)

namespace {

[[noreturn]] void throwVocabularyError(const GgufFile& file, const std::string& message) {
  throw GgufError(file.path() + ": " + message);
}

bool isNumberType(GgufValueType type) {
  switch (type) {
    case GgufValueType::String:
    case GgufValueType::Array:
    case GgufValueType::Bool:
      return false;
    default:
      return true;
  }
}

// An optional per-token array of numbers; nullptr when absent.
const GgufValue* perTokenNumbers(const GgufFile& file, std::string_view key, size_t token_count) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return nullptr;
  if (value->type != GgufValueType::Array || !isNumberType(value->element_type)) {
    throwVocabularyError(file, std::string(key) + " is not an array of numbers");
  }
  if (value->items.size() != token_count) {
    throwVocabularyError(file, std::string(key) + " has " + std::to_string(value->items.size()) +
                                   " entries for " + std::to_string(token_count) + " tokens");
  }
  return value;
}

double numberOf(const GgufValue& value) {
  return value.isReal() ? value.real : static_cast<double>(value.integer);
}

TokenId tokenIdAt(const GgufFile& file, std::string_view key, size_t token_count) {
  const int64_t id = *file.getInt(key);
  if (id < 0 || static_cast<uint64_t>(id) >= token_count) {
    throwVocabularyError(file, std::string(key) + " = " + std::to_string(id) + " is outside the " +
                                   std::to_string(token_count) + "-token vocabulary");
  }
  return static_cast<TokenId>(id);
}

// The first of `keys` present in the file, else the token spelled `text`. A token found by its text is made a
// control token, as llama.cpp does for "control-looking" FIM tokens it finds by text.
TokenId infillTokenId(const GgufFile& file, Vocabulary& vocab, std::initializer_list<std::string_view> keys,
                      std::string_view text) {
  for (std::string_view key : keys) {
    if (file.find(key) != nullptr) return tokenIdAt(file, key, vocab.tokens.size());
  }
  const auto found = std::find(vocab.tokens.begin(), vocab.tokens.end(), text);
  if (found == vocab.tokens.end()) return kNoToken;
  const auto id = static_cast<TokenId>(found - vocab.tokens.begin());
  vocab.types[id] = TokenType::Control;
  return id;
}

}  // namespace

Vocabulary readVocabulary(const GgufFile& file) {
  const std::string model = file.requireString("tokenizer.ggml.model");
  if (model != "llama") {
    throwVocabularyError(file, "tokenizer model '" + model +
                                   "' is not supported (only SentencePiece 'llama' vocabularies are)");
  }
  const GgufValue* texts = file.getArray("tokenizer.ggml.tokens", GgufValueType::String);
  if (texts == nullptr || texts->items.empty()) throwVocabularyError(file, "the vocabulary has no tokens");
  const size_t count = texts->items.size();

  Vocabulary vocab;
  vocab.tokens.reserve(count);
  for (size_t id = 0; id < count; ++id) {
    const std::string& text = texts->items[id].string;
    // llama.cpp renames empty tokens rather than rejecting the file.
    vocab.tokens.push_back(text.empty() ? "[EMPTY_" + std::to_string(id) + "]" : text);
  }

  // Absent scores are all 0 and absent types all normal, as in llama.cpp.
  vocab.scores.assign(count, 0.0f);
  if (const GgufValue* scores = perTokenNumbers(file, "tokenizer.ggml.scores", count)) {
    for (size_t id = 0; id < count; ++id) vocab.scores[id] = static_cast<float>(numberOf(scores->items[id]));
  }
  vocab.types.assign(count, TokenType::Normal);
  if (const GgufValue* types = perTokenNumbers(file, "tokenizer.ggml.token_type", count)) {
    for (size_t id = 0; id < count; ++id) {
      const double type = numberOf(types->items[id]);
      // llama.cpp treats a type it does not know as undefined.
      const bool known = type >= static_cast<double>(TokenType::Undefined) &&
                         type <= static_cast<double>(TokenType::Byte) && type == static_cast<int>(type);
      vocab.types[id] = known ? static_cast<TokenType>(static_cast<int>(type)) : TokenType::Undefined;
    }
  }

  // llama.cpp's defaults for SPM vocabularies (<unk> 0, <s> 1, </s> 2), dropped when the vocabulary is too small.
  auto specialTokenId = [&](std::string_view key, TokenId default_id) -> TokenId {
    if (file.find(key) != nullptr) return tokenIdAt(file, key, count);
    return static_cast<size_t>(default_id) < count ? default_id : kNoToken;
  };
  vocab.unk = specialTokenId("tokenizer.ggml.unknown_token_id", 0);
  vocab.bos = specialTokenId("tokenizer.ggml.bos_token_id", 1);
  vocab.eos = specialTokenId("tokenizer.ggml.eos_token_id", 2);
  vocab.fim_pre = infillTokenId(file, vocab, {"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.fim_pre_token_id"},
                                "\xE2\x96\x81<PRE>");
  vocab.fim_suf = infillTokenId(file, vocab, {"tokenizer.ggml.suffix_token_id", "tokenizer.ggml.fim_suf_token_id"},
                                "\xE2\x96\x81<SUF>");
  vocab.fim_mid = infillTokenId(file, vocab, {"tokenizer.ggml.middle_token_id", "tokenizer.ggml.fim_mid_token_id"},
                                "\xE2\x96\x81<MID>");
  vocab.eot = infillTokenId(file, vocab, {"tokenizer.ggml.eot_token_id"}, "\xE2\x96\x81<EOT>");

  vocab.add_bos = file.getBool("tokenizer.ggml.add_bos_token").value_or(true);
  vocab.add_eos = file.getBool("tokenizer.ggml.add_eos_token").value_or(false);
  vocab.add_space_prefix = file.getBool("tokenizer.ggml.add_space_prefix").value_or(true);
  try {
    checkVocabulary(vocab);
  } catch (const std::invalid_argument& error) {
    throwVocabularyError(file, error.what());
  }
  return vocab;
}

}  // namespace pc
