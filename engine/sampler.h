// Picks the next token from logits. The chain follows llama.cpp's default order: repetition penalty, then (unless
// greedy) top-k, top-p and min-p on the untempered distribution, then temperature, then a seeded draw.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/tokenizer.h"

namespace pc {

struct SamplerOptions {
  float temperature = 0.0f;    // <= 0: greedy (argmax; ties go to the lowest id)
  int32_t top_k = 40;          // <= 0: no limit
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f; // 1: off; divides positive logits (multiplies negative) of recently seen tokens
  int32_t repeat_last_n = 64;  // how many recent tokens the penalty looks at
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options);

  // logits (vocab,); history: the tokens so far (prompt and generated), for the repetition penalty.
  TokenId sample(const float* logits, int64_t vocab, const std::vector<TokenId>& history);

 private:
  struct Candidate {
    TokenId id;
    float logit;
  };
  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<float> penalized_;
};

}  // namespace pc
