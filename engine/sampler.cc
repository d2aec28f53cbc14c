#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace pc {

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {
  if (!(options.repeat_penalty > 0.0f)) throw std::invalid_argument("repeat penalty must be positive");
}

TokenId Sampler::sample(const float* logits, int64_t vocab, const std::vector<TokenId>& history) {
  const float* scores = logits;
  if (options_.repeat_penalty != 1.0f && options_.repeat_last_n != 0) {
    penalized_.assign(logits, logits + vocab);
    const size_t window = options_.repeat_last_n < 0 ? history.size()
                                                     : std::min(history.size(), static_cast<size_t>(options_.repeat_last_n));
    // A token seen several times is penalised once, as llama.cpp's penalties sampler does.
    std::unordered_set<TokenId> seen(history.end() - static_cast<std::ptrdiff_t>(window), history.end());
    for (TokenId id : seen) {
      if (id < 0 || id >= vocab) continue;
      float& logit = penalized_[static_cast<size_t>(id)];
      logit = logit > 0 ? logit / options_.repeat_penalty : logit * options_.repeat_penalty;
    }
    scores = penalized_.data();
  }

  if (options_.temperature <= 0.0f) return static_cast<TokenId>(std::max_element(scores, scores + vocab) - scores);

  candidates_.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) candidates_[static_cast<size_t>(i)] = {static_cast<TokenId>(i), scores[i]};
  const auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t kept = candidates_.size();
  if (options_.top_k > 0) kept = std::min(kept, static_cast<size_t>(options_.top_k));
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(kept), candidates_.end(), by_logit);

  // Untempered probabilities of the sorted candidates, for top-p and min-p.
  std::vector<float> probs(kept);
  const float max_logit = candidates_[0].logit;
  double total = 0;
  for (size_t i = 0; i < kept; ++i) total += probs[i] = std::exp(candidates_[i].logit - max_logit);
  if (options_.top_p < 1.0f) {
    double cumulative = 0;
    for (size_t i = 0; i < kept; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= options_.top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  if (options_.min_p > 0.0f) {
    // probs[0] is the largest: keep while p_i >= min_p * p_max (always at least one).
    size_t i = 1;
    while (i < kept && probs[i] >= options_.min_p * probs[0]) ++i;
    kept = i;
  }

  // Temperature, then a draw from the renormalised distribution of what is left.
  double tempered_total = 0;
  for (size_t i = 0; i < kept; ++i) {
    probs[i] = std::exp((candidates_[i].logit - max_logit) / options_.temperature);
    tempered_total += probs[i];
  }
  double draw = std::uniform_real_distribution<double>(0.0, tempered_total)(rng_);
  for (size_t i = 0; i < kept; ++i) {
    draw -= probs[i];
    if (draw < 0) return candidates_[i].id;
  }
  return candidates_[kept - 1].id;
}

}  // namespace pc
