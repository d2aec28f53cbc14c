// A session keeps a token sequence and its KV cache across requests. A new request reuses the longest common
// prefix of the cached tokens and its prompt and computes only the rest; then the generate loop samples, streams
// text (complete UTF-8 characters, stop strings held back), and stops on EOS/EOT, a stop string, max tokens, the
// end of the context, or cancellation (checked every token and every prompt micro-batch).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/forward.h"
#include "engine/kv/kv_cache.h"
#include "engine/kv/kv_compressor.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "kernels/cpu/thread_pool.h"

namespace pc {

struct SessionOptions {
  int64_t context_size = 0;  // 0: the model's context length
  int threads = 0;           // 0: all hardware threads
  KvPolicyConfig kv;         // full by default
};

struct GenerateOptions {
  int64_t max_tokens = 256;
  SamplerOptions sampling;
  std::vector<std::string> stop;  // stop strings
  bool ignore_eos = false;         // benchmarks: keep generating through EOS/EOT
};

enum class StopReason { EndOfGeneration, StopString, MaxTokens, ContextFull, Cancelled };
const char* stopReasonName(StopReason reason);  // "eos", "stop", "length", "context", "cancelled"

struct Timings {
  int64_t prompt_tokens = 0;  // tokens of the request's prompt
  int64_t reused_tokens = 0;  // of which found in the cache
  double prompt_ms = 0;       // computing the rest, up to the first sampled token
  int64_t generated_tokens = 0;
  double generate_ms = 0;     // after the first sampled token
};

struct GenerateResult {
  std::vector<TokenId> tokens;  // generated tokens (without the one that ended generation, if EOS/EOT)
  std::string text;
  StopReason stop_reason = StopReason::MaxTokens;
  Timings timings;
};

struct KvLayerStats {
  int64_t tokens = 0;
  uint64_t bytes = 0;
};

struct KvStats {
  std::string policy;
  uint64_t bytes = 0;       // in use
  uint64_t full_bytes = 0;  // what a full cache would need for the same tokens
  int64_t tokens = 0;       // tokens the session has seen
  double decay_ratio = 0;   // pyramid: the schedule in use (target_ratio solved for the last prompt)
  double recent_ratio = 0;
  std::vector<KvLayerStats> layers;
};

// Called with each generated token and the text it releases (may be empty while a character or a possible stop
// string is incomplete).
using TokenCallback = std::function<void(TokenId token, const std::string& text)>;

class Session {
 public:
  Session(std::shared_ptr<const Model> model, const SessionOptions& options);

  GenerateResult generate(const std::vector<TokenId>& prompt, const GenerateOptions& options,
                          const TokenCallback& on_token = nullptr, const std::atomic<bool>* cancel = nullptr);

  // Evaluates `tokens` from an empty cache as one prompt (compressed by the policy) and returns logits: (vocab,)
  // for the last token or, under the full policy only, (n, vocab) for all.
  // Throws std::runtime_error("cancelled") if `cancel` is raised.
  std::vector<float> evaluate(const std::vector<TokenId>& tokens, LogitsWanted wanted,
                              const std::atomic<bool>* cancel = nullptr);

  // Teacher-forced scoring under the policy, as generation would see it: tokens[0, context) are one prompt, then
  // each later token is fed as if generated. Returns log p(tokens[t] | tokens[0, t)) for t in [context, n).
  std::vector<double> logProbs(const std::vector<TokenId>& tokens, int64_t context, const std::atomic<bool>* cancel = nullptr);

  KvStats kvStats() const;
  int64_t contextSize() const { return context_size_; }
  const std::vector<TokenId>& tokens() const { return tokens_; }
  const KvCache& cache() const { return cache_; }
  void reset();

 private:
  // Makes the cache hold exactly `prompt` minus at least its last token, returning how many tokens were reused;
  // throws if the prompt plus `reserve` tokens cannot fit the context or memory.
  int64_t reusePrefix(const std::vector<TokenId>& prompt, int64_t reserve);
  // Runs tokens_[from..] through the model under the policy (a prompt after `from` reused tokens, or generated
  // tokens), leaving the last token's logits in logits_ (or every token's in `all_logits`).
  bool extend(size_t from, bool prompt, const std::atomic<bool>* cancel, float* all_logits = nullptr);

  std::shared_ptr<const Model> model_;
  int64_t context_size_;
  cpu::ThreadPool pool_;
  KvCache cache_;
  KvCompressor compressor_;
  Forward forward_;
  std::vector<TokenId> tokens_;  // every token that went through the model (the cache may have dropped some)
  std::vector<int32_t> positions_;
  std::vector<float> logits_;
};

}  // namespace pc
