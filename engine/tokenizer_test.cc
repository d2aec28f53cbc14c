// Tokenizer tests: the SentencePiece rules on small hand-built vocabularies (each case isolates one rule), then
// golden token ids on the real CodeLLaMA vocabulary of media/models/tiny-code-q8_0.gguf, taken from llama.cpp's
// own tokenizer test (models/ggml-vocab-llama-spm.gguf.out, made with the LLaMA vocabulary, whose first 32000
// tokens CodeLLaMA's equal).
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf.h"
#include "engine/testing/check.h"
#include "engine/testing/gguf_builder.h"
#include "engine/tokenizer.h"

// Failed checks print token sequences (the harness's show() overload set, extended for this file).
namespace pc {
namespace {

using Ids = std::vector<TokenId>;

// A LLaMA-shaped vocabulary: <unk> 0, <s> 1, </s> 2, the 256 byte tokens 3..258, then what a test adds.
struct VocabularyBuilder {
  Vocabulary vocab;

  VocabularyBuilder() {
    add("<unk>", 0, TokenType::Unknown);
    add("<s>", 0, TokenType::Control);
    add("</s>", 0, TokenType::Control);
    for (int byte = 0; byte < 256; ++byte) {
      char spelled[7];
      std::snprintf(spelled, sizeof spelled, "<0x%02X>", byte);
      add(spelled, 0, TokenType::Byte);
    }
    vocab.unk = 0;
    vocab.bos = 1;
    vocab.eos = 2;
  }
  TokenId add(const std::string& text, float score, TokenType type = TokenType::Normal) {
    vocab.tokens.push_back(text);
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
    return static_cast<TokenId>(vocab.tokens.size() - 1);
  }
};

constexpr TokenId kBos = 1;
constexpr TokenId kEos = 2;
TokenId byteToken(uint8_t byte) { return 3 + byte; }

const std::string kSpace = "\xE2\x96\x81";  // ▁

// ---------------------------------------------------------------------------------------------------------------
// BPE rules

PC_TEST(merges_the_highest_scoring_pair_first) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId a = builder.add("a", -100);
  builder.add("b", -100);
  const TokenId c = builder.add("c", -100);
  const TokenId ab = builder.add("ab", -2);
  const TokenId bc = builder.add("bc", -1);
  Tokenizer tokenizer(builder.vocab);
  // "bc" outscores "ab", so b goes right even though "ab" is further left.
  PC_CHECK_EQ(tokenizer.encode("abc", false), (Ids{space, a, bc}));
  PC_CHECK_EQ(tokenizer.encode("ab", false), (Ids{space, ab}));
  PC_CHECK_EQ(tokenizer.encode("cab", false), (Ids{space, c, ab}));
}

PC_TEST(equal_scores_merge_the_leftmost_pair) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId a = builder.add("a", -100);
  const TokenId aa = builder.add("aa", -1);
  const TokenId c = builder.add("c", -100);
  builder.add("ac", -1);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("aaa", false), (Ids{space, aa, a}));
  PC_CHECK_EQ(tokenizer.encode("aaaaa", false), (Ids{space, aa, aa, a}));
  // "aa" and "ac" tie; the left pair wins and leaves c alone.
  PC_CHECK_EQ(tokenizer.encode("aac", false), (Ids{space, aa, c}));
}

PC_TEST(merged_pieces_keep_merging) {
  VocabularyBuilder builder;
  builder.add(kSpace, -100);
  builder.add("d", -100);
  builder.add("e", -100);
  builder.add("f", -100);
  builder.add("de", -1);
  builder.add("def", -2);
  const TokenId space_def = builder.add(kSpace + "def", -3);
  Tokenizer tokenizer(builder.vocab);
  // d+e, then de+f, then ▁+def: each product pairs with its new neighbours.
  PC_CHECK_EQ(tokenizer.encode("def", false), (Ids{space_def}));
  PC_CHECK_EQ(tokenizer.encode("def def", false), (Ids{space_def, space_def}));
}

PC_TEST(a_token_is_reached_only_through_pairs_that_are_tokens) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId x = builder.add("x", -100);
  const TokenId y = builder.add("y", -100);
  const TokenId z = builder.add("z", -100);
  builder.add("xyz", -1);  // no "xy" or "yz": SentencePiece BPE can never build it
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("xyz", false), (Ids{space, x, y, z}));
}

PC_TEST(characters_outside_the_vocabulary_fall_back_to_byte_tokens) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId a = builder.add("a", -100);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("a\xC3\xA9", false), (Ids{space, a, byteToken(0xC3), byteToken(0xA9)}));  // é
  PC_CHECK_EQ(tokenizer.encode("\xF0\x9F\xA6\x99", false),  // 🦙
              (Ids{space, byteToken(0xF0), byteToken(0x9F), byteToken(0xA6), byteToken(0x99)}));
  PC_CHECK_EQ(tokenizer.encode("\r\n\t", false), (Ids{space, byteToken('\r'), byteToken('\n'), byteToken('\t')}));
}

PC_TEST(a_character_in_the_vocabulary_is_one_token) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId llama = builder.add("\xF0\x9F\xA6\x99", -100);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99", false), (Ids{space, llama, llama}));
}

PC_TEST(spaces_are_escaped_and_the_text_gets_a_leading_space) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId two_spaces = builder.add(kSpace + kSpace, -1);
  const TokenId a = builder.add("a", -100);
  const TokenId space_a = builder.add(kSpace + "a", -2);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("a", false), (Ids{space_a}));
  PC_CHECK_EQ(tokenizer.encode(" a", false), (Ids{two_spaces, a}));
  PC_CHECK_EQ(tokenizer.encode("a a", false), (Ids{space_a, space_a}));
  PC_CHECK_EQ(tokenizer.encode("   ", false), (Ids{two_spaces, two_spaces}));
  PC_CHECK_EQ(tokenizer.encode("  ", false), (Ids{two_spaces, space}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("a a"), (Ids{a, space_a}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace(" a"), (Ids{space_a}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("  "), (Ids{two_spaces}));
}

PC_TEST(add_space_prefix_off_tokenizes_without_the_leading_space) {
  VocabularyBuilder builder;
  const TokenId a = builder.add("a", -100);
  const TokenId space_a = builder.add(kSpace + "a", -2);
  builder.add(kSpace, -100);
  builder.vocab.add_space_prefix = false;
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("a a", false), (Ids{a, space_a}));
  PC_CHECK_EQ(tokenizer.encode("a", true), (Ids{kBos, a}));
  PC_CHECK_EQ(tokenizer.decode({kBos, a, space_a}), "a a");
  PC_CHECK_EQ(tokenizer.decode({space_a}), " a");
}

PC_TEST(empty_text) {
  VocabularyBuilder builder;
  builder.add(kSpace, -100);
  Tokenizer tokenizer(builder.vocab);
  // As SentencePiece's encode('', add_special_tokens=True) == [BOS]: no leading space without text.
  PC_CHECK_EQ(tokenizer.encode("", true), (Ids{kBos}));
  PC_CHECK_EQ(tokenizer.encode("", false), Ids{});
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace(""), Ids{});
  PC_CHECK_EQ(tokenizer.decode({}), "");
}

PC_TEST(special_flags_add_bos_and_eos_as_the_vocabulary_says) {
  VocabularyBuilder builder;
  const TokenId space_a = builder.add(kSpace + "a", -1);
  builder.vocab.add_eos = true;
  PC_CHECK_EQ(Tokenizer(builder.vocab).encode("a", true), (Ids{kBos, space_a, kEos}));
  PC_CHECK_EQ(Tokenizer(builder.vocab).encode("a", false), (Ids{space_a}));
  builder.vocab.add_bos = false;
  PC_CHECK_EQ(Tokenizer(builder.vocab).encode("a", true), (Ids{space_a, kEos}));
}

// ---------------------------------------------------------------------------------------------------------------
// Special tokens in the text

PC_TEST(user_defined_tokens_are_always_split_out) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId a = builder.add("a", -100);
  builder.add("b", -100);
  const TokenId space_b = builder.add(kSpace + "b", -1);
  const TokenId tag = builder.add("<tag>", 0, TokenType::UserDefined);
  Tokenizer tokenizer(builder.vocab);
  // The text after a special token gets the leading space again (llama.cpp's is_prev_special).
  PC_CHECK_EQ(tokenizer.encode("a<tag>b", false), (Ids{space, a, tag, space_b}));
  PC_CHECK_EQ(tokenizer.encode("<tag><tag>", false), (Ids{tag, tag}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("<tag>b"), (Ids{tag, space_b}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("a<tag>"), (Ids{a, tag}));
  PC_CHECK_EQ(tokenizer.decode(tokenizer.encode("a<tag>b", true)), "a<tag>b");
}

PC_TEST(control_tokens_are_split_out_only_when_parsing_special_tokens) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId lt = builder.add("<", -100);
  const TokenId s = builder.add("s", -100);
  const TokenId gt = builder.add(">", -100);
  const TokenId x = builder.add("x", -100);
  const TokenId space_x = builder.add(kSpace + "x", -1);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("<s>x", false), (Ids{space, lt, s, gt, x}));
  PC_CHECK_EQ(tokenizer.encode("<s>x", false, /*parse_special=*/true), (Ids{kBos, space_x}));
  PC_CHECK_EQ(tokenizer.encode("x</s><unk>", true, /*parse_special=*/true), (Ids{kBos, space_x, kEos, 0}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("<s>x"), (Ids{lt, s, gt, x}));
}

PC_TEST(longer_special_tokens_are_split_out_first) {
  VocabularyBuilder builder;
  builder.add(kSpace, -100);
  builder.add("d", -100);
  const TokenId space_d = builder.add(kSpace + "d", -1);
  const TokenId ab = builder.add("ab", 0, TokenType::UserDefined);
  const TokenId abc = builder.add("abc", 0, TokenType::UserDefined);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encode("abcd", false), (Ids{abc, space_d}));
  PC_CHECK_EQ(tokenizer.encode("dabab", false), (Ids{space_d, ab, ab}));
  PC_CHECK_EQ(tokenizer.encode("ababc", false), (Ids{ab, abc}));
}

// ---------------------------------------------------------------------------------------------------------------
// Invalid UTF-8: cut into symbols by the lead byte's high nibble alone, like llama.cpp's unicode_len_utf8

PC_TEST(invalid_utf8_is_cut_as_llama_cpp_cuts_it) {
  VocabularyBuilder builder;
  const TokenId space = builder.add(kSpace, -100);
  const TokenId paren = builder.add("(", -100);
  const TokenId a = builder.add("a", -100);
  const TokenId x = builder.add("x", -100);
  Tokenizer tokenizer(builder.vocab);
  // 0xC3 claims two bytes, swallowing the "(" that a validating splitter would have kept as a token.
  PC_CHECK_EQ(tokenizer.encode("\xC3(", false), (Ids{space, byteToken(0xC3), byteToken('(')}));
  PC_CHECK_EQ(tokenizer.encode("(\xC3", false), (Ids{space, paren, byteToken(0xC3)}));  // clamped at the end
  // A stray continuation byte is a character of its own.
  PC_CHECK_EQ(tokenizer.encode("\x80" "a", false), (Ids{space, byteToken(0x80), a}));
  // 0xE2 claims three bytes and takes two of the escaped space's; the space's last byte stands alone.
  PC_CHECK_EQ(tokenizer.encode("\xE2 x", false),
              (Ids{space, byteToken(0xE2), byteToken(0xE2), byteToken(0x96), byteToken(0x81), x}));
  PC_CHECK_EQ(tokenizer.encode("\xFF\xFF\xFF\xFF\xFF", false),
              (Ids{space, byteToken(0xFF), byteToken(0xFF), byteToken(0xFF), byteToken(0xFF), byteToken(0xFF)}));
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

PC_TEST(decode_inverts_encode) {
  VocabularyBuilder builder;
  for (const char* piece : {"a", "b", "c", "i", "f", "(", ")", ":", "{", "}", "=", "\xC3\xA9", "ab", "if", "bc"}) {
    builder.add(piece, -50);
    builder.add(kSpace + piece, -40);
  }
  builder.add(kSpace, -100);
  builder.add(kSpace + kSpace, -30);
  builder.add(kSpace + kSpace + kSpace + kSpace, -20);
  builder.add("<tag>", 0, TokenType::UserDefined);
  Tokenizer tokenizer(builder.vocab);
  const char* texts[] = {
      "", " ", "   ", "a", " a", "  a  ", "if (a) {\n    b = c;\n}\n", "\r\n\tx\r\n", "caf\xC3\xA9 \xC3\xA9t\xC3\xA9",
      "\xF0\x9F\xA6\x99 llama", "\xE4\xB8\xAD\xE6\x96\x87", "<tag>", " <tag> ", "a<tag>b<tag>", "\n", "\n\n a",
      "\xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F",  // 😶‍🌫️
  };
  for (const char* text : texts) {
    PC_CHECK_EQ(tokenizer.decode(tokenizer.encode(text, true)), std::string(text));
    PC_CHECK_EQ(tokenizer.decode(tokenizer.encode(text, false)), std::string(text));
    PC_CHECK_EQ(tokenizer.decode(tokenizer.encodeNoLeadingSpace(text), /*at_text_start=*/false), std::string(text));
  }
  // Control tokens written in the text and parsed come back as nothing, and the space after them is removed.
  PC_CHECK_EQ(tokenizer.decode(tokenizer.encode("a</s>b", true, /*parse_special=*/true)), "ab");
}

PC_TEST(decode_gives_pieces_by_token_type) {
  VocabularyBuilder builder;
  const TokenId space_a = builder.add(kSpace + "a", -1);
  const TokenId a_space_b = builder.add("a" + kSpace + "b", -1);
  const TokenId tag = builder.add("<tag>", 0, TokenType::UserDefined);
  const TokenId unused = builder.add("<unused>", 0, TokenType::Unused);
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.tokenBytes(space_a), " a");
  PC_CHECK_EQ(tokenizer.tokenBytes(a_space_b), "a b");
  PC_CHECK_EQ(tokenizer.tokenBytes(byteToken(0x0A)), "\n");
  PC_CHECK_EQ(tokenizer.tokenBytes(tag), "<tag>");
  PC_CHECK_EQ(tokenizer.tokenBytes(kBos), "");
  PC_CHECK_EQ(tokenizer.tokenBytes(0), "");  // <unk>, as llama.cpp's token_to_piece(special=false)
  PC_CHECK_EQ(tokenizer.tokenBytes(unused), "");
  PC_CHECK_THROWS(tokenizer.tokenBytes(tokenizer.size()), "outside");
  PC_CHECK_THROWS(tokenizer.decode({-1}), "outside");
  // The leading-space rule's space goes at the start and after special tokens, not elsewhere.
  PC_CHECK_EQ(tokenizer.decode({space_a, space_a}), "a a");
  PC_CHECK_EQ(tokenizer.decode({kBos, space_a, kEos, kBos, space_a}), "aa");
  PC_CHECK_EQ(tokenizer.decode({tag, space_a}), "<tag>a");
  PC_CHECK_EQ(tokenizer.decode({0, space_a}), "a");
  // A continuation keeps its first space (an infill middle that starts with indentation).
  PC_CHECK_EQ(tokenizer.decode({space_a, space_a}, /*at_text_start=*/false), " a a");
}

PC_TEST(decode_replaces_invalid_utf8_from_byte_tokens) {
  VocabularyBuilder builder;
  const TokenId a = builder.add("a", -1);
  Tokenizer tokenizer(builder.vocab);
  const std::string replacement = "\xEF\xBF\xBD";
  PC_CHECK_EQ(tokenizer.decode({byteToken(0xC3), byteToken(0xA9)}), "\xC3\xA9");
  PC_CHECK_EQ(tokenizer.decode({byteToken(0xC3), a}), replacement + "a");
  PC_CHECK_EQ(tokenizer.decode({byteToken(0xE2), byteToken(0x82)}), replacement);  // one per maximal subpart
  PC_CHECK_EQ(tokenizer.decode({byteToken(0xFF), byteToken(0x80), a}), replacement + replacement + "a");
  PC_CHECK_EQ(tokenizer.decode({byteToken(0xED), byteToken(0xA0), byteToken(0x80)}),  // a UTF-16 surrogate
              replacement + replacement + replacement);
}

PC_TEST(stream_decoder_emits_only_complete_characters) {
  VocabularyBuilder builder;
  const TokenId space_a = builder.add(kSpace + "a", -1);
  Tokenizer tokenizer(builder.vocab);
  StreamDecoder decoder(tokenizer);
  PC_CHECK_EQ(decoder.push(space_a), "a");
  PC_CHECK_EQ(decoder.push(byteToken(0xF0)), "");
  PC_CHECK_EQ(decoder.push(byteToken(0x9F)), "");
  PC_CHECK_EQ(decoder.push(byteToken(0xA6)), "");
  PC_CHECK_EQ(decoder.push(byteToken(0x99)), "\xF0\x9F\xA6\x99");
  PC_CHECK_EQ(decoder.push(byteToken(0xC3)), "");
  PC_CHECK_EQ(decoder.flush(), "\xEF\xBF\xBD");  // the tail never completed
  PC_CHECK_EQ(decoder.flush(), "");

  StreamDecoder continuation(tokenizer, /*at_text_start=*/false);
  PC_CHECK_EQ(continuation.push(space_a), " a");
}

PC_TEST(stream_decoder_output_joins_to_decode) {
  VocabularyBuilder builder;
  const TokenId space_a = builder.add(kSpace + "a", -1);
  const TokenId e_acute = builder.add("\xC3\xA9", -1);
  const TokenId tag = builder.add("<tag>", 0, TokenType::UserDefined);
  Tokenizer tokenizer(builder.vocab);
  const std::vector<Ids> sequences = {
      {space_a, byteToken(0xE4), byteToken(0xB8), byteToken(0xAD), space_a},
      {kBos, space_a, byteToken(0xE4), byteToken(0xB8), e_acute, byteToken(0x80), kEos, space_a},
      {byteToken(0xF0), byteToken(0x9F), tag, space_a, byteToken(0xF0), byteToken(0x9F), byteToken(0xA6)},
      {byteToken(0xE0), byteToken(0x80), byteToken(0xF4), byteToken(0x90), byteToken(0xC2)},
  };
  for (const Ids& tokens : sequences) {
    for (bool at_text_start : {true, false}) {
      StreamDecoder decoder(tokenizer, at_text_start);
      std::string streamed;
      for (TokenId token : tokens) streamed += decoder.push(token);
      streamed += decoder.flush();
      PC_CHECK_EQ(streamed, tokenizer.decode(tokens, at_text_start));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary validation

PC_TEST(inconsistent_vocabularies_are_refused) {
  PC_CHECK_THROWS(Tokenizer(Vocabulary{}), "no tokens");
  {
    VocabularyBuilder builder;
    builder.vocab.scores.pop_back();
    PC_CHECK_THROWS(Tokenizer(builder.vocab), "differ in length");
  }
  {
    VocabularyBuilder builder;
    builder.add("a", -1);
    builder.add("a", -2);
    PC_CHECK_THROWS(Tokenizer(builder.vocab), "duplicate token 'a'");
  }
  {
    VocabularyBuilder builder;
    builder.vocab.fim_mid = 1000;
    PC_CHECK_THROWS(Tokenizer(builder.vocab), "MID token id 1000");
  }
  {
    VocabularyBuilder builder;
    builder.add("", -1);
    PC_CHECK_THROWS(Tokenizer(builder.vocab), "empty text");
  }
  {
    VocabularyBuilder builder;
    builder.add("<0xZZ>", 0, TokenType::Byte);
    PC_CHECK_THROWS(Tokenizer(builder.vocab), "not spelled <0xXX>");
  }
  {
    VocabularyBuilder builder;
    builder.vocab.bos = kNoToken;
    PC_CHECK_THROWS(Tokenizer(builder.vocab), "no BOS");
  }
}

PC_TEST(a_vocabulary_without_byte_fallback_is_refused) {
  VocabularyBuilder builder;
  builder.vocab.tokens[3 + 0x71] = "q";  // a one-character token may stand in for its byte, as in llama.cpp
  builder.vocab.types[3 + 0x71] = TokenType::Normal;
  Tokenizer tokenizer(builder.vocab);
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("\xC3\xA9q"), (Ids{byteToken(0xC3), byteToken(0xA9), 3 + 0x71}));
  builder.vocab.tokens[3 + 0x71] = "qq";
  PC_CHECK_THROWS(Tokenizer(builder.vocab), "no byte token <0x71>");
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the vocabulary from GGUF metadata

// A GGUF file with the metadata of VocabularyBuilder's vocabulary plus `extra_tokens` (normal, score -1).
testing::GgufBuilder vocabularyFile(const std::vector<std::string>& extra_tokens) {
  const Vocabulary base = VocabularyBuilder().vocab;
  std::vector<std::string> tokens = base.tokens;
  std::vector<float> scores = base.scores;
  std::vector<int32_t> types;
  for (TokenType type : base.types) types.push_back(static_cast<int32_t>(type));
  for (const std::string& text : extra_tokens) {
    tokens.push_back(text);
    scores.push_back(-1.0f);
    types.push_back(static_cast<int32_t>(TokenType::Normal));
  }
  testing::GgufBuilder file;
  file.string("tokenizer.ggml.model", "llama");
  file.array("tokenizer.ggml.tokens", GgufValueType::String, tokens);
  file.array("tokenizer.ggml.scores", GgufValueType::F32, scores);
  file.array("tokenizer.ggml.token_type", GgufValueType::I32, types);
  return file;
}

Vocabulary readFrom(const testing::GgufBuilder& file) {
  return readVocabulary(*GgufFile::fromBytes(file.build(), "vocab.gguf"));
}

constexpr TokenId kFirstExtra = 259;

PC_TEST(read_vocabulary_applies_llama_cpp_defaults) {
  const Vocabulary vocab = readFrom(vocabularyFile({"a", "b"}));
  PC_CHECK_EQ(vocab.tokens.size(), size_t{261});
  PC_CHECK_EQ(vocab.tokens[kFirstExtra], "a");
  PC_CHECK_EQ(vocab.scores[kFirstExtra], -1.0f);
  PC_CHECK(vocab.types[0] == TokenType::Unknown && vocab.types[3] == TokenType::Byte &&
           vocab.types[kFirstExtra] == TokenType::Normal);
  PC_CHECK_EQ(vocab.unk, 0);
  PC_CHECK_EQ(vocab.bos, 1);
  PC_CHECK_EQ(vocab.eos, 2);
  PC_CHECK_EQ(vocab.fim_pre, kNoToken);
  PC_CHECK_EQ(vocab.eot, kNoToken);
  PC_CHECK(vocab.add_bos && !vocab.add_eos && vocab.add_space_prefix);
}

PC_TEST(read_vocabulary_finds_infill_tokens_by_key_or_text) {
  std::vector<std::string> extra;
  for (const char* marker : {"<PRE>", "<SUF>", "<MID>", "<EOT>"}) extra.push_back(kSpace + marker);
  {
    const Vocabulary vocab = readFrom(vocabularyFile(extra));
    PC_CHECK_EQ(vocab.fim_pre, kFirstExtra);
    PC_CHECK_EQ(vocab.fim_suf, kFirstExtra + 1);
    PC_CHECK_EQ(vocab.fim_mid, kFirstExtra + 2);
    PC_CHECK_EQ(vocab.eot, kFirstExtra + 3);
    // A control-looking token found by its text is made a control token.
    PC_CHECK(vocab.types[kFirstExtra] == TokenType::Control);
  }
  testing::GgufBuilder file = vocabularyFile(extra);
  file.scalar("tokenizer.ggml.fim_pre_token_id", GgufValueType::U32, uint32_t{10});
  file.scalar("tokenizer.ggml.suffix_token_id", GgufValueType::U32, uint32_t{11});
  file.scalar("tokenizer.ggml.fim_suf_token_id", GgufValueType::U32, uint32_t{12});  // the older key wins
  file.scalar("tokenizer.ggml.add_bos_token", GgufValueType::Bool, false);
  file.scalar("tokenizer.ggml.add_space_prefix", GgufValueType::Bool, false);
  const Vocabulary vocab = readFrom(file);
  PC_CHECK_EQ(vocab.fim_pre, 10);
  PC_CHECK_EQ(vocab.fim_suf, 11);
  PC_CHECK_EQ(vocab.fim_mid, kFirstExtra + 2);
  PC_CHECK(!vocab.add_bos && !vocab.add_space_prefix);
}

PC_TEST(read_vocabulary_refuses_bad_metadata) {
  const std::vector<std::string> tokens = VocabularyBuilder().vocab.tokens;
  {
    testing::GgufBuilder file;
    file.string("tokenizer.ggml.model", "gpt2");
    file.array("tokenizer.ggml.tokens", GgufValueType::String, tokens);
    PC_CHECK_THROWS(readFrom(file), "tokenizer model 'gpt2' is not supported");
  }
  {
    testing::GgufBuilder file;
    file.string("tokenizer.ggml.model", "llama");
    file.array("tokenizer.ggml.tokens", GgufValueType::String, std::vector<std::string>{});
    PC_CHECK_THROWS(readFrom(file), "no tokens");
  }
  {
    testing::GgufBuilder file;
    file.string("tokenizer.ggml.model", "llama");
    file.array("tokenizer.ggml.tokens", GgufValueType::String, tokens);
    file.array("tokenizer.ggml.scores", GgufValueType::F32, std::vector<float>(tokens.size() - 1, 0.0f));
    PC_CHECK_THROWS(readFrom(file), "tokenizer.ggml.scores has 258 entries for 259 tokens");
  }
  {
    testing::GgufBuilder file;
    file.string("tokenizer.ggml.model", "llama");
    file.array("tokenizer.ggml.tokens", GgufValueType::String, tokens);
    file.array("tokenizer.ggml.token_type", GgufValueType::I32, std::vector<int32_t>(tokens.size() + 1, 1));
    PC_CHECK_THROWS(readFrom(file), "tokenizer.ggml.token_type has 260 entries");
  }
  {
    testing::GgufBuilder file = vocabularyFile({});
    file.scalar("tokenizer.ggml.eos_token_id", GgufValueType::U32, uint32_t{259});
    PC_CHECK_THROWS(readFrom(file), "tokenizer.ggml.eos_token_id = 259 is outside");
  }
  {
    testing::GgufBuilder file = vocabularyFile({});
    file.scalar("tokenizer.ggml.middle_token_id", GgufValueType::I32, int32_t{-1});
    PC_CHECK_THROWS(readFrom(file), "tokenizer.ggml.middle_token_id = -1 is outside");
  }
  // What the Tokenizer would refuse comes out as a GgufError naming the file.
  PC_CHECK_THROWS(readFrom(vocabularyFile({"a", "a"})), "vocab.gguf: duplicate token 'a' has ids 259 and 260");
  {
    testing::GgufBuilder file;
    file.string("tokenizer.ggml.model", "llama");
    file.array("tokenizer.ggml.tokens", GgufValueType::String, std::vector<std::string>{"<unk>", "<s>", "</s>"});
    PC_CHECK_THROWS(readFrom(file), "no byte token <0x00>");
  }
  bool refused_as_gguf_error = false;  // the fuzz driver counts any other exception type as a failure
  try {
    readFrom(vocabularyFile({"a", "a"}));
  } catch (const GgufError&) {
    refused_as_gguf_error = true;
  }
  PC_CHECK(refused_as_gguf_error);
}

// ---------------------------------------------------------------------------------------------------------------
// The real CodeLLaMA vocabulary

const Tokenizer& codeLlamaTokenizer() {
  static const Tokenizer tokenizer(
      readVocabulary(*GgufFile::open(PC_SOURCE_DIR "/media/models/tiny-code-q8_0.gguf")));
  return tokenizer;
}

PC_TEST(codellama_vocabulary_is_read) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  const Vocabulary& vocab = tokenizer.vocab();
  PC_CHECK_EQ(tokenizer.size(), 32016);
  PC_CHECK_EQ(vocab.bos, 1);
  PC_CHECK_EQ(vocab.eos, 2);
  PC_CHECK_EQ(vocab.unk, 0);
  PC_CHECK_EQ(vocab.fim_pre, 32007);
  PC_CHECK_EQ(vocab.fim_suf, 32008);
  PC_CHECK_EQ(vocab.fim_mid, 32009);
  PC_CHECK_EQ(vocab.eot, 32010);
  PC_CHECK(tokenizer.hasInfill());
  PC_CHECK(tokenizer.isEndOfGeneration(2) && tokenizer.isEndOfGeneration(32010) && !tokenizer.isEndOfGeneration(1));
  PC_CHECK(vocab.add_bos && !vocab.add_eos && vocab.add_space_prefix);
}

// llama.cpp tests/test-tokenizer-0 with models/ggml-vocab-llama-spm.gguf: inputs from convert_hf_to_gguf_update.py,
// ids from the .out file (tokenized with add_special=false).
PC_TEST(codellama_matches_llama_cpp_test_tokenizer_goldens) {
  const std::pair<const char*, Ids> goldens[] = {
      {"ied 4 \xC2\xBD months", {474, 287, 29871, 29946, 29871, 30226, 7378}},
      {"F\xC3\xBChrer", {383, 4000, 261}},
      {"", {}},
      {" ", {259}},
      {"  ", {1678}},
      {"   ", {268}},
      {"\t", {29871, 12}},
      {"\n\n", {29871, 13, 13}},
      {"\t\n", {29871, 12, 13}},
      {"Hello world", {15043, 3186}},
      {" Hello World!", {29871, 15043, 2787, 29991}},
      {"Hello, world!", {15043, 29892, 3186, 29991}},
      {" this is \xF0\x9F\xA6\x99.cpp", {29871, 445, 338, 29871, 243, 162, 169, 156, 29889, 8223}},
      {"w048 7tuijk dsdfhu", {281, 29900, 29946, 29947, 29871, 29955, 9161, 13535, 18031, 2176, 6905}},
      {"\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE \xD0\xBD\xD0\xB0 \xD0\x91\xD1\x8A\xD0\xBB\xD0\xB3\xD0\xB0\xD1\x80\xD1\x81\xD0"
       "\xBA\xD0\xB8",  // нещо на Български
       {1538, 4851, 665, 1386, 29713, 1305}},
      {"\xF0\x9F\x9A\x80 (normal) \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F (multiple emojis "
       "concatenated) \xE2\x9C\x85 (only emoji that has its own token)",
       {29871, 243, 162, 157, 131, 313, 8945, 29897, 29871, 243, 162, 155, 185, 30722, 243, 162, 143, 174, 30598,
        313, 20787, 953, 3848, 275, 16125, 630, 29897, 29871, 31681, 313, 6194, 953, 29877, 2397, 393, 756, 967,
        1914, 5993, 29897}},
      {"    Hello\n    Hello", {268, 15043, 13, 1678, 15043}},
      {"\n =", {29871, 13, 353}},
      {"' era", {525, 3152}},
      {"Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8" "apple\xE5\xB7\xA5\xE4\xBD"
       "\x9C" "1314151\xE5\xA4\xA9\xEF\xBD\x9E",  // ...我想在apple工作1314151天～
       {15043, 29892, 343, 29915, 497, 29991, 1128, 526, 366, 29871, 243, 162, 155, 132, 1577, 30672, 31522, 30505,
        11548, 31041, 30732, 29896, 29941, 29896, 29946, 29896, 29945, 29896, 30408, 30739}},
      {"333333333", {29871, 29941, 29941, 29941, 29941, 29941, 29941, 29941, 29941, 29941}},
  };
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  for (const auto& [text, ids] : goldens) {
    PC_CHECK_EQ(tokenizer.encode(text, false), ids);
    PC_CHECK_EQ(tokenizer.decode(ids), std::string(text));
  }
}

// Ids from llama.cpp itself (node-llama-cpp 3.22.1 on this file), for what its test file does not cover.
PC_TEST(codellama_special_token_parsing_matches_llama_cpp) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  PC_CHECK_EQ(tokenizer.encode("<s>a</s>", false), (Ids{529, 29879, 29958, 29874, 829, 29879, 29958}));
  PC_CHECK_EQ(tokenizer.encode("<s>a</s>", false, /*parse_special=*/true), (Ids{1, 263, 2}));
  PC_CHECK_EQ(tokenizer.encode("Hello world", true), (Ids{1, 15043, 3186}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("Hello world"), (Ids{10994, 3186}));
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace(" x"), (Ids{921}));
  // Meta's encode_infilling: no ▁ before a leading newline (node-llama-cpp's trimLeadingSpace keeps a 29871 here).
  PC_CHECK_EQ(tokenizer.encodeNoLeadingSpace("\nfoo"), (Ids{13, 5431}));
}

// Random token sequences, byte tokens (valid, truncated and stray) mixed with text and special tokens.
PC_TEST(codellama_stream_decoding_equals_decoding_whole) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  std::mt19937 random(7);
  for (int sequence = 0; sequence < 300; ++sequence) {
    Ids tokens;
    for (int i = 0; i < 40; ++i) {
      const uint32_t pick = random() % 4;
      tokens.push_back(pick == 0   ? static_cast<TokenId>(random() % tokenizer.size())
                       : pick == 1 ? static_cast<TokenId>(3 + random() % 256)                // any byte
                                   : static_cast<TokenId>(3 + 0x80 + random() % 0x78));  // UTF-8 parts
    }
    for (bool at_text_start : {true, false}) {
      StreamDecoder decoder(tokenizer, at_text_start);
      std::string streamed;
      for (TokenId token : tokens) streamed += decoder.push(token);
      streamed += decoder.flush();
      PC_CHECK_EQ(streamed, tokenizer.decode(tokens, at_text_start));
    }
  }
}

PC_TEST(codellama_two_megabytes_of_code_tokenize_quickly) {
  std::string source;
  for (int i = 0; source.size() < 2'000'000; ++i) {
    source += "function handler" + std::to_string(i) + "(request, response) {\n"
              "    const body = JSON.parse(request.body ?? \"{}\");\t// caf\xC3\xA9 \xF0\x9F\xA6\x99\n"
              "    if (body.items.length > " + std::to_string(i % 97) + ") return response.status(413);\n"
              "    return response.json({ ok: true, count: body.items.length });\n}\n\n";
  }
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tokenizer.encode(source, true);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("     2 MB of code -> %zu tokens in %.3f s\n", ids.size(), seconds);
  PC_CHECK(seconds < 10.0);  // about 0.4 s in a release build; generous for sanitizer builds and busy machines
  PC_CHECK_EQ(tokenizer.decode(ids), source);
}

}  // namespace
}  // namespace pc
