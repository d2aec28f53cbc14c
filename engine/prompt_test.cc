// Prompt layout tests: the infill orders and the chat format on the real CodeLLaMA vocabulary, checked against
// token ids produced outside this code base (Meta's reference in llama.cpp issue #3503, llama.cpp's tokenization
// of HF's chat template), plus the error cases on a small vocabulary.
#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/prompt.h"
#include "engine/testing/check.h"

// Failed checks print token sequences (the harness's show() overload set, extended for this file).
namespace pc {
namespace {

using Ids = std::vector<TokenId>;

Ids concat(std::initializer_list<Ids> parts) {
  Ids all;
  for (const Ids& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

const Tokenizer& codeLlamaTokenizer() {
  static const Tokenizer tokenizer(
      readVocabulary(*GgufFile::open(PC_SOURCE_DIR "/media/models/tiny-code-q8_0.gguf")));
  return tokenizer;
}

// llama.cpp issue #3503: the tokens of Meta's codellama repository for its first infilling example.
const std::string kPrefix = "def remove_non_ascii(s: str) -> str:\n    \"\"\" ";
const std::string kSuffix = "\n    return result\n";
const Ids kPrefixTokens = {822, 3349, 29918, 5464, 29918, 294, 18869, 29898, 29879, 29901, 851, 29897, 1599, 851,
                           29901, 13, 1678, 9995, 29871};
const Ids kSuffixTokens = {13, 1678, 736, 1121, 13};  // no leading 29871: the suffix loses its implicit space

PC_TEST(psm_infill_matches_the_codellama_reference) {
  const Ids expected = {1,     32007, 822,   3349,  29918, 5464, 29918, 294,   18869, 29898,
                        29879, 29901, 851,   29897, 1599,  851,  29901, 13,    1678,  9995,
                        29871, 32008, 13,    1678,  736,   1121, 13,    32009};
  PC_CHECK_EQ(buildInfillPrompt(codeLlamaTokenizer(), kPrefix, kSuffix, InfillOrder::PrefixSuffixMiddle), expected);
}

PC_TEST(spm_infill_puts_the_suffix_first_and_encodes_the_prefix_as_in_psm) {
  const Ids expected = concat({{1, 32007, 32008}, kSuffixTokens, {32009}, kPrefixTokens});
  PC_CHECK_EQ(buildInfillPrompt(codeLlamaTokenizer(), kPrefix, kSuffix, InfillOrder::SuffixPrefixMiddle), expected);
}

PC_TEST(infill_with_empty_parts) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  PC_CHECK_EQ(buildInfillPrompt(tokenizer, "", "", InfillOrder::PrefixSuffixMiddle), (Ids{1, 32007, 32008, 32009}));
  PC_CHECK_EQ(buildInfillPrompt(tokenizer, "", "", InfillOrder::SuffixPrefixMiddle), (Ids{1, 32007, 32008, 32009}));
  // A suffix that starts with a space keeps it, as one ▁-token: " x" -> "▁x" (921), not "▁" "▁x".
  PC_CHECK_EQ(buildInfillPrompt(tokenizer, "", " x", InfillOrder::PrefixSuffixMiddle),
              (Ids{1, 32007, 32008, 921, 32009}));
}

// The marker texts in user code are ordinary text: only the ids the prompt builder inserts are markers.
PC_TEST(infill_marker_text_in_code_is_not_a_marker) {
  const Ids prompt = buildInfillPrompt(codeLlamaTokenizer(), "a \xE2\x96\x81<SUF> <s>", "<MID>",
                                       InfillOrder::PrefixSuffixMiddle);
  PC_CHECK_EQ(std::count(prompt.begin(), prompt.end(), 32008), 1);
  PC_CHECK_EQ(std::count(prompt.begin(), prompt.end(), 32009), 1);
  PC_CHECK_EQ(std::count(prompt.begin(), prompt.end(), 1), 1);
}

// <unk> 0, <s> 1, </s> 2, ▁a 3, a 4, then the byte tokens.
Vocabulary smallVocabulary() {
  Vocabulary vocab;
  vocab.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", "a"};
  vocab.scores = {0, 0, 0, -1, -2};
  vocab.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal, TokenType::Normal};
  for (int byte = 0; byte < 256; ++byte) {
    char spelled[7];
    std::snprintf(spelled, sizeof spelled, "<0x%02X>", byte);
    vocab.tokens.push_back(spelled);
    vocab.scores.push_back(0);
    vocab.types.push_back(TokenType::Byte);
  }
  vocab.unk = 0;
  vocab.bos = 1;
  vocab.eos = 2;
  return vocab;
}

PC_TEST(infill_needs_the_infill_tokens) {
  Tokenizer tokenizer(smallVocabulary());
  PC_CHECK_THROWS(buildInfillPrompt(tokenizer, "a", "a", InfillOrder::PrefixSuffixMiddle),
                  "this model has no infill tokens");
  PC_CHECK_THROWS(buildInfillPrompt(tokenizer, "a", "a", InfillOrder::SuffixPrefixMiddle),
                  "34B and Python variants do not");
}

PC_TEST(infill_bos_follows_the_vocabulary) {
  Vocabulary vocab = smallVocabulary();
  for (const char* marker : {"<PRE>", "<SUF>", "<MID>"}) {
    vocab.tokens.push_back(std::string("\xE2\x96\x81") + marker);
    vocab.scores.push_back(0);
    vocab.types.push_back(TokenType::Control);
  }
  const TokenId pre = 261, suf = 262, mid = 263;
  vocab.fim_pre = pre;
  vocab.fim_suf = suf;
  vocab.fim_mid = mid;
  PC_CHECK_EQ(buildInfillPrompt(Tokenizer(vocab), "a", "a", InfillOrder::PrefixSuffixMiddle),
              (Ids{1, pre, 3, suf, 4, mid}));
  vocab.add_bos = false;
  PC_CHECK_EQ(buildInfillPrompt(Tokenizer(vocab), "a", "a", InfillOrder::SuffixPrefixMiddle),
              (Ids{pre, suf, 4, mid, 3}));
}

// Expected ids: llama.cpp (node-llama-cpp 3.22.1) tokenizing, with special tokens parsed, the text HF's
// CodeLlama-Instruct chat template renders for the same conversation.
PC_TEST(chat_matches_the_llama2_template) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  // "<s>[INST] Hello there [/INST]"
  PC_CHECK_EQ(buildChatPrompt(tokenizer, "", {{"Hello there", ""}}),
              (Ids{1, 518, 25580, 29962, 15043, 727, 518, 29914, 25580, 29962}));
  // "<s>[INST] <<SYS>>\nYou are a careful coder.\n<</SYS>>\n\nWrite fizzbuzz. [/INST] Here it is. </s>"
  // "<s>[INST] Now in C. [/INST]"
  const Ids expected = {1,     518,   25580, 29962, 3532,  14816, 29903, 6778, 13,    3492,  526,  263,   16010, 274,
                        6119,  29889, 13,    29966, 829,   14816, 29903, 6778, 13,    13,    6113, 285,   4981,  2423,
                        5617,  29889, 518,   29914, 25580, 29962, 2266,  372,  338,   29889, 29871, 2,   1,     518,
                        25580, 29962, 2567,  297,   315,   29889, 518,   29914, 25580, 29962};
  PC_CHECK_EQ(buildChatPrompt(tokenizer, "You are a careful coder.",
                              {{"Write fizzbuzz.", "Here it is."}, {"Now in C.", ""}}),
              expected);
}

PC_TEST(chat_turns_are_stripped_like_python_str_strip) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  const Ids plain = buildChatPrompt(tokenizer, "", {{"Hi", "Yo"}, {"Bye", ""}});
  // ASCII and Unicode whitespace (U+00A0, U+3000) around a turn goes, as with str.strip().
  PC_CHECK_EQ(buildChatPrompt(tokenizer, "", {{" \t\nHi\xC2\xA0", "\xE3\x80\x80Yo \n"}, {"Bye\r\n", ""}}), plain);
  // With a system prompt the strip applies to the whole first message, so the user's own leading space stays.
  PC_CHECK(buildChatPrompt(tokenizer, "S", {{" Hi", ""}}) != buildChatPrompt(tokenizer, "S", {{"Hi", ""}}));
  PC_CHECK_EQ(buildChatPrompt(tokenizer, "S", {{"Hi ", ""}}), buildChatPrompt(tokenizer, "S", {{"Hi", ""}}));
}

PC_TEST(chat_refuses_malformed_conversations) {
  const Tokenizer& tokenizer = codeLlamaTokenizer();
  PC_CHECK_THROWS(buildChatPrompt(tokenizer, "", {}), "at least one user turn");
  PC_CHECK_THROWS(buildChatPrompt(tokenizer, "", {{"Hi", "Hello"}}), "last chat turn must await its answer");
  PC_CHECK_THROWS(buildChatPrompt(tokenizer, "", {{"Hi", ""}, {"Again", ""}}), "turn 1 of 2 has no answer");
}

}  // namespace
}  // namespace pc
