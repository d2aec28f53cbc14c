// Prompt assembly directly in token ids: CodeLLaMA infilling in both orders and the Llama-2 Instruct chat format.
// Marker tokens are inserted by id, never by tokenizing their text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"

namespace pc {

enum class InfillOrder {
  PrefixSuffixMiddle,  // PSM: [BOS, PRE] prefix [SUF] suffix [MID]
  SuffixPrefixMiddle,  // SPM: [BOS, PRE, SUF] suffix [MID] prefix — typing appends, and the recent window is the prefix
};

// Throws std::invalid_argument ("model has no infill tokens ...") when the vocabulary lacks PRE/SUF/MID.
// The suffix is tokenized without the leading-space rule, the prefix with it (as CodeLLaMA was trained).
std::vector<TokenId> buildInfillPrompt(const Tokenizer& tokenizer, std::string_view prefix, std::string_view suffix,
                                       InfillOrder order);

struct ChatTurn {
  std::string user;
  std::string assistant;  // empty for the last, unanswered turn
};

// `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]` (the system block only when non-empty), answered turns
// as ` {assistant} </s>` followed by `<s>[INST] {user} [/INST]` for the next.
std::vector<TokenId> buildChatPrompt(const Tokenizer& tokenizer, std::string_view system,
                                     const std::vector<ChatTurn>& turns);

}  // namespace pc
