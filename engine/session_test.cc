// Sessions on the trained demo model: greedy determinism, prefix reuse equal to a fresh prefill, evaluate() equal
// to generate()'s logits, stop rules, cancellation, and clear errors for prompts that do not fit.
#include "engine/session.h"

#include <atomic>
#include <cmath>
#include <string>

#include "engine/testing/check.h"

namespace pc {
namespace {

std::shared_ptr<const Model> demoModel() {
  static std::shared_ptr<const Model> model = Model::load(PC_SOURCE_DIR "/media/models/tiny-code-q8_0.gguf");
  return model;
}

std::vector<TokenId> encode(const std::string& text) { return demoModel()->tokenizer().encode(text, true); }

SessionOptions options(int64_t context_size, int threads, KvPolicyConfig kv = {}) {
  SessionOptions result;
  result.context_size = context_size;
  result.threads = threads;
  result.kv = kv;
  return result;
}

GenerateOptions greedy(int64_t max_tokens) {
  GenerateOptions options;
  options.max_tokens = max_tokens;
  return options;
}

float maxAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

const char* kCode = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        ";

PC_TEST(greedy_generation_is_deterministic_and_reports_timings) {
  Session first(demoModel(), options(256, 2));
  Session second(demoModel(), options(256, 1));
  GenerateResult a = first.generate(encode(kCode), greedy(24));
  GenerateResult b = second.generate(encode(kCode), greedy(24));
  PC_CHECK_EQ(a.tokens, b.tokens);
  PC_CHECK_EQ(a.text, b.text);
  PC_CHECK_EQ(a.timings.prompt_tokens, static_cast<int64_t>(encode(kCode).size()));
  PC_CHECK_EQ(a.timings.reused_tokens, 0);
  PC_CHECK(a.timings.prompt_ms > 0);
  PC_CHECK(a.stop_reason == StopReason::MaxTokens || a.stop_reason == StopReason::EndOfGeneration);
  PC_CHECK_EQ(demoModel()->tokenizer().decode(a.tokens, /*at_text_start=*/false), a.text);
}

PC_TEST(prefix_reuse_gives_the_logits_of_a_fresh_prefill) {
  const std::vector<TokenId> prompt = encode(std::string(kCode) + "return [line.strip() for line in f]\n");
  Session reused(demoModel(), options(256, 2));
  std::vector<TokenId> shorter(prompt.begin(), prompt.end() - 6);
  reused.generate(shorter, greedy(4));
  // Extending the prompt reuses the cached prefix; the continuation must equal a fresh session's.
  GenerateResult extended = reused.generate(prompt, greedy(8));
  // At least the shorter prompt; more when the tokens generated after it equal the prompt's next ones.
  PC_CHECK(extended.timings.reused_tokens >= static_cast<int64_t>(shorter.size()));
  Session fresh(demoModel(), options(256, 2));
  GenerateResult expected = fresh.generate(prompt, greedy(8));
  PC_CHECK_EQ(extended.tokens, expected.tokens);
  // An edit in the middle reuses only the part before it.
  std::vector<TokenId> edited = prompt;
  edited[5] = edited[5] == 100 ? 101 : 100;
  GenerateResult after_edit = reused.generate(edited, greedy(4));
  PC_CHECK_EQ(after_edit.timings.reused_tokens, 5);
}

PC_TEST(evaluate_matches_the_logits_that_generation_samples_from) {
  const std::vector<TokenId> prompt = encode(kCode);
  Session session(demoModel(), options(256, 2));
  std::vector<float> all = session.evaluate(prompt, LogitsWanted::All);
  std::vector<float> last = session.evaluate(prompt, LogitsWanted::Last);
  const int64_t vocab = demoModel()->config().vocab_size;
  PC_CHECK_EQ(all.size(), prompt.size() * static_cast<size_t>(vocab));
  std::vector<float> all_last(all.end() - vocab, all.end());
  PC_CHECK(maxAbsDifference(all_last, last) < 1e-4f);
  const TokenId argmax = static_cast<TokenId>(std::max_element(last.begin(), last.end()) - last.begin());
  GenerateResult generated = session.generate(prompt, greedy(1));
  if (!generated.tokens.empty()) PC_CHECK_EQ(generated.tokens[0], argmax);
}

PC_TEST(stop_strings_end_generation_before_the_stop_text) {
  Session session(demoModel(), options(256, 2));
  GenerateResult free_run = session.generate(encode(kCode), greedy(32));
  PC_CHECK(free_run.text.size() > 4);
  // Stop at a piece of text the model is known to produce.
  const std::string stop = free_run.text.substr(free_run.text.size() / 2, 3);
  GenerateOptions options = greedy(32);
  options.stop = {stop};
  std::string streamed;
  GenerateResult stopped = session.generate(encode(kCode), options, [&](TokenId, const std::string& text) { streamed += text; });
  PC_CHECK(stopped.stop_reason == StopReason::StopString);
  PC_CHECK_EQ(stopped.text, free_run.text.substr(0, free_run.text.find(stop)));
  PC_CHECK_EQ(streamed, stopped.text);
}

PC_TEST(cancellation_stops_generation_and_keeps_the_session_usable) {
  Session session(demoModel(), options(256, 2));
  std::atomic<bool> cancel{false};
  int seen = 0;
  GenerateResult result = session.generate(encode(kCode), greedy(100), [&](TokenId, const std::string&) {
    if (++seen == 3) cancel.store(true);
  }, &cancel);
  PC_CHECK(result.stop_reason == StopReason::Cancelled);
  PC_CHECK_EQ(static_cast<int>(result.tokens.size()), 3);
  // Raised before the prompt runs: nothing is computed, and the cache keeps no partial entries.
  std::atomic<bool> raised{true};
  GenerateResult none = session.generate(encode("int main() {"), greedy(10), nullptr, &raised);
  PC_CHECK(none.stop_reason == StopReason::Cancelled);
  PC_CHECK(none.tokens.empty());
  GenerateResult after = session.generate(encode(kCode), greedy(4));
  PC_CHECK_EQ(static_cast<int>(after.tokens.size()), 4);
}

PC_TEST(context_limits_are_clear_errors_or_a_stop_reason) {
  Session small(demoModel(), options(16, 1));
  std::vector<TokenId> long_prompt(40, 300);
  long_prompt[0] = 1;
  PC_CHECK_THROWS(small.generate(long_prompt, greedy(4)), "more than the context size 16");
  GenerateOptions many = greedy(100);
  many.ignore_eos = true;
  GenerateResult full = small.generate(encode("x = 1"), many);
  PC_CHECK(full.stop_reason == StopReason::ContextFull);
  PC_CHECK_THROWS(Session(demoModel(), options(1 << 20, 1)), "exceeds the model's context length");
  PC_CHECK_THROWS(small.generate({}, greedy(1)), "empty");
  PC_CHECK_THROWS(small.evaluate({1, 99999}, LogitsWanted::Last), "outside the vocabulary");
}

PC_TEST(kv_stats_count_every_layer_of_a_full_cache) {
  Session session(demoModel(), options(256, 2));
  const std::vector<TokenId> prompt = encode(kCode);
  session.generate(prompt, greedy(5));
  KvStats stats = session.kvStats();
  PC_CHECK_EQ(stats.policy, std::string("full"));
  PC_CHECK_EQ(static_cast<int64_t>(stats.layers.size()), demoModel()->config().n_layers);
  const int64_t cached = stats.layers[0].tokens;
  PC_CHECK(cached >= static_cast<int64_t>(prompt.size()));
  // 6 layers x (2 kv heads x 32) x (K and V) x f16
  PC_CHECK_EQ(stats.bytes, static_cast<uint64_t>(cached) * 6 * 64 * 2 * 2);
  PC_CHECK_EQ(stats.bytes, stats.full_bytes);
}

PC_TEST(compressed_prefix_reuse_keeps_every_layer_s_rows_before_the_change) {
  KvPolicyConfig pyramid;
  pyramid.kind = KvPolicyKind::Pyramid;
  pyramid.target_ratio = 0.7;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n\n";
  const std::vector<TokenId> prompt = encode(text);
  PC_CHECK(prompt.size() > 450);
  Session session(demoModel(), options(512, 2, pyramid));
  session.generate(std::vector<TokenId>(prompt.begin(), prompt.begin() + 440), greedy(2));
  // Rows (positions and keys) each layer holds before position 400.
  const auto rowsBefore = [&](int32_t limit) {
    std::vector<std::vector<int32_t>> positions;
    std::vector<std::vector<uint16_t>> keys;
    for (int64_t l = 0; l < session.cache().layerCount(); ++l) {
      const KvLayer& kv = session.cache().layer(l);
      int64_t n = 0;
      while (n < kv.length() && kv.positions()[n] < limit) ++n;
      positions.emplace_back(kv.positions(), kv.positions() + n);
      keys.emplace_back(kv.keys(), kv.keys() + n * kv.kvDim());
    }
    return std::make_pair(positions, keys);
  };
  const auto before = rowsBefore(400);
  std::vector<TokenId> edited(prompt.begin(), prompt.begin() + 400);
  edited.insert(edited.end(), prompt.begin() + 401, prompt.begin() + 450);
  GenerateResult result = session.generate(edited, greedy(2));
  PC_CHECK_EQ(result.timings.reused_tokens, 400);
  const auto after = rowsBefore(400);
  PC_CHECK(after.first == before.first);
  PC_CHECK(after.second == before.second);
  // The compressed layers really dropped rows before the change.
  PC_CHECK(static_cast<int64_t>(before.first.back().size()) < 400);
}

}  // namespace
}  // namespace pc
