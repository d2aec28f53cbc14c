// KV cache policies and their configuration, and the pure plan of what a policy keeps: per-layer lengths for a
// prompt length, computed without the model (the settings preview and `pyramid-coder plan` use it, and the
// engine's prefill follows the same schedule). ../shared/PYRAMIDINFER.md is the specification.
//
//   full       every layer keeps every token
//   pyramid    PyramidInfer: after layer l, only the pivotal contexts (chosen by the attention of the recent window)
//              and the recent window go on to layer l+1, a cosine share s_l of them; decode compresses chunks of
//              tokens leaving the recent window
//   streaming  StreamingLLM: the first sink tokens and a recent window, the same budget in every layer
//   h2o        H2O: heavy hitters (accumulated attention) and a recent window, the same budget in every layer
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pc {

enum class KvPolicyKind { Full, Pyramid, Streaming, H2O };

const char* kvPolicyName(KvPolicyKind kind);
KvPolicyKind parseKvPolicy(const std::string& name);  // throws std::invalid_argument naming the choices

// Defaults are those of the reference's configs/llama2_7b.json.
struct KvPolicyConfig {
  KvPolicyKind kind = KvPolicyKind::Full;
  double recent_ratio = 0.2;       // R = int(N * recent_ratio); the last 1+R prompt tokens are the recent window
  double decay_ratio = 0.9;        // r: s_l = (1 - r) (cos(pi l / L) + 1) / 2 + r
  int64_t layer_interval = 1;      // select after layers l with l % interval == 0
  int64_t min_context = 64;        // a selection that would keep <= this many context tokens keeps all
  int64_t sink_tokens = 4;         // the first tokens are always kept
  double distance_weight = 1.2;    // the newest recent query weighs this much, the oldest 1.0
  bool decode_compression = true;  // pyramid: compress tokens leaving the recent window while generating
  double gen_decay_ratio = 0.1;    // g_l = (1 - gen_decay) (cos(pi l / L) + 1) / 2 + gen_decay
  double gen_compress_ratio = 0.9; // a chunk of exceed_length keeps max(int(exceed_length * ratio * g_l), 1)
  int64_t exceed_length = 16;
  // > 0: the whole cache should land at this fraction of the full cache. pyramid solves the decay for it (and
  // shrinks the recent window when even decay 0 keeps too much); streaming and h2o keep this fraction of the tokens
  // seen in every layer (0: 0.5 for them; pyramid then uses decay_ratio as given).
  double target_ratio = 0;
  int64_t max_layer_tokens = 0;    // > 0: no layer holds more rows, however long generation runs (not full)
};

// Throws std::invalid_argument naming the first out-of-range value.
void validateKvPolicy(const KvPolicyConfig& config);

// s_l, PyramidInfer's share of context kept after layer l of n_layers (cosine schedule; s_0 = 1).
double pyramidKeepShare(int64_t layer, int64_t n_layers, double decay_ratio);
// g_l, the decode-time counterpart with gen_decay_ratio.
int64_t decodeChunkKeep(const KvPolicyConfig& config, int64_t layer, int64_t n_layers);

// Rows of the recent window for a prompt of n tokens (1 + R, at most n).
int64_t recentWindow(const KvPolicyConfig& config, int64_t prompt_tokens);
// Rows every layer of streaming/h2o keeps once n tokens have been seen: the target share, at least min_context.
int64_t uniformBudget(const KvPolicyConfig& config, int64_t prompt_tokens);

// The selection after one pyramid layer: how many of `context` candidate tokens (outside the recent window) go on.
int64_t pyramidContextKept(const KvPolicyConfig& config, int64_t layer, int64_t n_layers, int64_t context);

struct KvPlan {
  KvPolicyConfig resolved;             // target_ratio turned into the decay (pyramid) it needs
  std::vector<int64_t> layer_tokens;   // rows each layer keeps after prefilling the prompt
  int64_t total_tokens = 0;            // sum over layers
  double ratio = 1.0;                  // total_tokens / (n_layers * prompt_tokens)
};

// What `config` keeps for a prompt of `prompt_tokens` tokens in a model of `n_layers` layers.
KvPlan planKv(const KvPolicyConfig& config, int64_t n_layers, int64_t prompt_tokens);

}  // namespace pc
