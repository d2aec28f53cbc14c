// Sampling and stop strings, against distributions computed by hand.
#include "engine/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "engine/stop_matcher.h"
#include "engine/testing/check.h"

namespace pc {
namespace {

std::map<TokenId, double> frequencies(const SamplerOptions& options, const std::vector<float>& logits, int draws,
                                      const std::vector<TokenId>& history = {}) {
  Sampler sampler(options);
  std::map<TokenId, double> counts;
  for (int i = 0; i < draws; ++i) counts[sampler.sample(logits.data(), static_cast<int64_t>(logits.size()), history)] += 1.0 / draws;
  return counts;
}

SamplerOptions unrestricted(float temperature) {
  SamplerOptions options;
  options.temperature = temperature;
  options.top_k = 0;
  options.top_p = 1.0f;
  options.min_p = 0.0f;
  return options;
}

PC_TEST(greedy_picks_the_largest_logit_and_the_lowest_id_on_ties) {
  Sampler sampler(SamplerOptions{});
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  PC_CHECK_EQ(sampler.sample(logits.data(), 4, {}), 1);
}

PC_TEST(temperature_draws_follow_the_softmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    auto seen = frequencies(unrestricted(temperature), logits, 40000);
    double total = 0;
    for (float l : logits) total += std::exp(l / temperature);
    for (int id = 0; id < 3; ++id) PC_CHECK(std::fabs(seen[id] - std::exp(logits[id] / temperature) / total) < 0.01);
  }
}

PC_TEST(the_seed_makes_draws_reproducible) {
  const std::vector<float> logits = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  SamplerOptions options = unrestricted(1.0f);
  options.seed = 42;
  Sampler a(options), b(options);
  for (int i = 0; i < 50; ++i) PC_CHECK_EQ(a.sample(logits.data(), 5, {}), b.sample(logits.data(), 5, {}));
}

PC_TEST(top_k_top_p_and_min_p_cut_the_tail) {
  const std::vector<float> logits = {4.0f, 3.0f, 2.0f, 1.0f, 0.0f};
  SamplerOptions top_k = unrestricted(1.0f);
  top_k.top_k = 2;
  for (const auto& [id, share] : frequencies(top_k, logits, 5000)) PC_CHECK(id <= 1 && share > 0);
  // p = softmax(4,3,2,1,0) = .636 .234 .086 .032 .012: top-p 0.8 keeps the first two.
  SamplerOptions top_p = unrestricted(1.0f);
  top_p.top_p = 0.8f;
  auto kept = frequencies(top_p, logits, 5000);
  PC_CHECK_EQ(kept.size(), size_t{2});
  // min-p 0.1 keeps p >= 0.0636: the first three.
  SamplerOptions min_p = unrestricted(1.0f);
  min_p.min_p = 0.1f;
  PC_CHECK_EQ(frequencies(min_p, logits, 5000).size(), size_t{3});
}

PC_TEST(repetition_penalty_demotes_recent_tokens) {
  const std::vector<float> logits = {2.0f, 1.5f, -1.0f};
  SamplerOptions options;
  options.repeat_penalty = 2.0f;
  Sampler sampler(options);
  // 2.0 / 2 = 1.0 < 1.5: token 0 loses to token 1 once it was seen.
  PC_CHECK_EQ(sampler.sample(logits.data(), 3, {0}), 1);
  PC_CHECK_EQ(sampler.sample(logits.data(), 3, {2}), 0);
}

PC_TEST(stop_strings_hold_back_what_could_begin_one) {
  StopMatcher matcher({"\n\n", "END"});
  PC_CHECK_EQ(matcher.push("abc").released, std::string("abc"));
  PC_CHECK_EQ(matcher.push("E").released, std::string(""));  // could begin END
  PC_CHECK_EQ(matcher.push("x").released, std::string("Ex"));
  PC_CHECK_EQ(matcher.push("line\n").released, std::string("line"));
  StopMatcher::Step step = matcher.push("\nafter");
  PC_CHECK(step.stopped);
  PC_CHECK_EQ(step.released, std::string(""));
  StopMatcher tail({"STOP"});
  PC_CHECK_EQ(tail.push("ST").released, std::string(""));
  PC_CHECK_EQ(tail.flush(), std::string("ST"));
}

}  // namespace
}  // namespace pc
