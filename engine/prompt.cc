// Prompt layouts of the reference implementations, reproduced token for token: CodeLLaMA infilling as Meta's
// codellama repository builds it (llama/generation.py, infilling_prompt_tokens) and Llama-2 chat as Meta's
// chat_completion builds it (which HF's CodeLlama-Instruct chat template renders to the same tokens).
#include "engine/prompt.h"

#include <stdexcept>

namespace pc {
namespace {

// Python's str.isspace() set, because the reference trims turns with str.strip() (and the HF template with Jinja's
// trim, which is the same call).
bool isPythonWhitespace(uint32_t code_point) {
  return (code_point >= 0x09 && code_point <= 0x0D) || (code_point >= 0x1C && code_point <= 0x20) ||
         code_point == 0x85 || code_point == 0xA0 || code_point == 0x1680 ||
         (code_point >= 0x2000 && code_point <= 0x200A) || code_point == 0x2028 || code_point == 0x2029 ||
         code_point == 0x202F || code_point == 0x205F || code_point == 0x3000;
}

constexpr uint32_t kNotACharacter = 0xFFFFFFFF;

// The code point of the UTF-8 character starting at `text[at]` and its byte `length`; kNotACharacter (length 1) for
// a malformed sequence, which then counts as text, not whitespace.
uint32_t codePointAt(std::string_view text, size_t at, size_t& length) {
  const auto lead = static_cast<uint8_t>(text[at]);
  length = 1;
  if (lead < 0x80) return lead;
  const size_t expected = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  if (expected == 0 || at + expected > text.size()) return kNotACharacter;
  uint32_t code_point = lead & (0x7F >> expected);
  for (size_t i = 1; i < expected; ++i) {
    const auto byte = static_cast<uint8_t>(text[at + i]);
    if ((byte & 0xC0) != 0x80) return kNotACharacter;
    code_point = (code_point << 6) | (byte & 0x3F);
  }
  length = expected;
  return code_point;
}

std::string_view stripPythonWhitespace(std::string_view text) {
  size_t length = 0;
  while (!text.empty() && isPythonWhitespace(codePointAt(text, 0, length))) text.remove_prefix(length);
  while (!text.empty()) {
    size_t start = text.size() - 1;  // back to the lead byte of the last character
    while (start > 0 && text.size() - start < 4 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    if (!isPythonWhitespace(codePointAt(text, start, length)) || start + length != text.size()) break;
    text.remove_suffix(length);
  }
  return text;
}

void append(std::vector<TokenId>& prompt, const std::vector<TokenId>& tokens) {
  prompt.insert(prompt.end(), tokens.begin(), tokens.end());
}

}  // namespace

// Meta's reference, which CodeLLaMA was trained to match:
//   PSM  [BOS, PRE] encode(prefix) [SUF] encode_infilling(suffix) [MID]
//   SPM  [BOS, PRE, SUF] encode_infilling(suffix) [MID] encode(prefix)
// encode() keeps SentencePiece's implicit leading space, encode_infilling() suppresses it (the paper: "we suppress
// the implicit leading space ... upon encoding the middle part and the suffix"); the prefix is encoded the same way
// in both orders. llama.cpp differs on both counts: its server's SPM order is [BOS, SUF] suffix [PRE] prefix [MID]
// (the layout of other FIM models, not CodeLLaMA's), and it now tokenizes the suffix with the leading space.
// BOS follows the vocabulary's add_bos, as llama.cpp's format_infill does.
std::vector<TokenId> buildInfillPrompt(const Tokenizer& tokenizer, std::string_view prefix, std::string_view suffix,
                                       InfillOrder order) {
  if (!tokenizer.hasInfill()) {
    throw std::invalid_argument(
        "this model has no infill tokens (\xE2\x96\x81<PRE>/\xE2\x96\x81<SUF>/\xE2\x96\x81<MID>); CodeLLaMA 7B/13B base "
        "or Instruct support infilling, 34B and Python variants do not");
  }
  const Vocabulary& vocab = tokenizer.vocab();
  const std::vector<TokenId> prefix_tokens = tokenizer.encode(prefix, /*add_special=*/false);
  const std::vector<TokenId> suffix_tokens = tokenizer.encodeNoLeadingSpace(suffix);

  std::vector<TokenId> prompt;
  prompt.reserve(prefix_tokens.size() + suffix_tokens.size() + 4);
  if (vocab.add_bos) prompt.push_back(vocab.bos);
  prompt.push_back(vocab.fim_pre);
  if (order == InfillOrder::PrefixSuffixMiddle) {
    append(prompt, prefix_tokens);
    prompt.push_back(vocab.fim_suf);
    append(prompt, suffix_tokens);
    prompt.push_back(vocab.fim_mid);
  } else {
    prompt.push_back(vocab.fim_suf);
    append(prompt, suffix_tokens);
    prompt.push_back(vocab.fim_mid);
    append(prompt, prefix_tokens);
  }
  return prompt;
}

// Meta's chat_completion: the system prompt is glued in front of the first user message, and each turn is one
// encode() call with BOS (and EOS once answered):
//   answered   encode(f"[INST] {user.strip()} [/INST] {answer.strip()} ", bos=True, eos=True)
//   last       encode(f"[INST] {user.strip()} [/INST]", bos=True)
// where for the first turn `user` is "<<SYS>>\n{system}\n<</SYS>>\n\n{user}" and the strip applies to that whole.
// The answer is encoded in the same call as its question (tokenizing it separately would add a second leading
// space). BOS here is part of the format, not the vocabulary's add_bos: HF's template writes it in every turn.
std::vector<TokenId> buildChatPrompt(const Tokenizer& tokenizer, std::string_view system,
                                     const std::vector<ChatTurn>& turns) {
  const Vocabulary& vocab = tokenizer.vocab();
  if (turns.empty()) throw std::invalid_argument("a chat prompt needs at least one user turn");
  if (!turns.back().assistant.empty()) throw std::invalid_argument("the last chat turn must await its answer");
  if (vocab.bos == kNoToken || (turns.size() > 1 && vocab.eos == kNoToken)) {
    throw std::invalid_argument("the Llama-2 chat format needs BOS and EOS tokens");
  }

  std::vector<TokenId> prompt;
  for (size_t i = 0; i < turns.size(); ++i) {
    const ChatTurn& turn = turns[i];
    const bool answered = i + 1 < turns.size();
    if (answered && turn.assistant.empty()) {
      throw std::invalid_argument("chat turn " + std::to_string(i + 1) + " of " + std::to_string(turns.size()) +
                                  " has no answer; only the last turn may await one");
    }
    std::string user;
    if (i == 0 && !system.empty()) {
      user.append("<<SYS>>\n").append(system).append("\n<</SYS>>\n\n");
    }
    user += turn.user;
    std::string text = "[INST] ";
    text.append(stripPythonWhitespace(user)).append(" [/INST]");
    if (answered) text.append(" ").append(stripPythonWhitespace(turn.assistant)).append(" ");

    prompt.push_back(vocab.bos);
    append(prompt, tokenizer.encode(text, /*add_special=*/false));
    if (answered) prompt.push_back(vocab.eos);
  }
  return prompt;
}

}  // namespace pc
