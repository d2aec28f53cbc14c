// A KV policy at work in a session. It tells the forward pass whose attention to accumulate into the cached rows'
// scores and, in PyramidInfer's prefill, which tokens leave the hidden-state stream after each layer; after each
// forward it compresses the cache (pyramid's decode-time chunks, the streaming and h2o budgets, the per-layer cap).
//
// PyramidInfer decode, as done here: per layer, rows before `settled` are final; when the rows between `settled` and
// the recent window reach exceed_length, that chunk keeps its decodeChunkKeep() best-scored rows and becomes settled.
// A row's score is the attention it has drawn from the recent window in prefill (linspace-weighted mean, as the
// selection) plus, from then on, every later query's attention weighted as the newest recent query. The reference
// instead re-weights a stored (1+R) x length block of the recent queries' probabilities; accumulating per row
// keeps one float per row and needs no probability matrix.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv/kv_cache.h"
#include "engine/kv/kv_policy.h"

namespace pc {

class KvCompressor {
 public:
  KvCompressor(const KvPolicyConfig& config, int64_t n_layers);

  const KvPolicyConfig& config() const { return config_; }
  KvPolicyKind kind() const { return config_.kind; }
  // The configuration in use since the last prompt: target_ratio solved for that prompt's length.
  const KvPolicyConfig& schedule() const { return schedule_; }

  // Before running a request's prompt: `reused` tokens are cached already and `fresh` more follow.
  void beginPrompt(int64_t reused, int64_t fresh);
  // Before running generated (or teacher-forced) tokens one forward at a time.
  void beginDecode();
  // After the cache was cut back for prefix reuse.
  void truncated(const KvCache& cache);
  void reset();

  // Forward hook: at `layer`, queries [first_query, stream) of the stream add weights[t - first_query] times their
  // head-mean attention to the layer's row scores. False when this policy scores nothing.
  bool scoring(int64_t layer, int64_t stream, int64_t* first_query, const float** weights);
  // Forward hook: after `layer` ran on the stream (its last `stream` rows, scored), the ascending indices of the
  // stream tokens that go on to the next layer. Leaves `keep` empty when all of them do.
  void survivors(int64_t layer, const KvLayer& kv, int64_t stream, std::vector<int64_t>* keep);
  // After a forward: decode-time compression, the uniform budgets, the per-layer cap.
  void compress(KvCache& cache);

 private:
  KvPolicyConfig config_;
  int64_t n_layers_;
  KvPolicyConfig schedule_;
  bool selecting_ = false;       // this forward is a pyramid prefill that drops tokens from the stream
  int64_t window_ = 1;           // 1 + R rows of the last prompt's recent window
  std::vector<float> weights_;   // per scored query
  std::vector<int64_t> settled_; // per layer: rows never compressed again
};

// Indices in [0, count) of the `keep` rows to retain, ascending: rows at positions < sinks first, then the highest
// `scores` (ties to the older row), or, when scores is null, the newest rows.
std::vector<int64_t> rowsToKeep(const float* scores, const int32_t* positions, int64_t count, int64_t keep, int64_t sinks);

}  // namespace pc
