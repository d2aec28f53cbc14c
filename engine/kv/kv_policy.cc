#include "engine/kv/kv_policy.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pc {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kDefaultUniformRatio = 0.5;

// (1 - decay) * (cos(pi * l / L) + 1) / 2 + decay, evaluated in the reference's order so int() truncations match.
double cosineShare(int64_t layer, int64_t n_layers, double decay) {
  const double angle = kPi * static_cast<double>(layer) / static_cast<double>(n_layers);
  return (1.0 - decay) * (std::cos(angle) + 1.0) / 2.0 + decay;
}

void requireRange(double value, double low, double high, const char* name) {
  if (!(value >= low && value <= high))
    throw std::invalid_argument(std::string("KV option ") + name + " must be in [" + std::to_string(low) + ", " +
                                std::to_string(high) + "], got " + std::to_string(value));
}

std::vector<int64_t> pyramidLengths(const KvPolicyConfig& config, int64_t n_layers, int64_t prompt_tokens) {
  std::vector<int64_t> lengths(static_cast<size_t>(n_layers), prompt_tokens);
  const int64_t window = recentWindow(config, prompt_tokens);
  int64_t length = prompt_tokens;
  for (int64_t l = 0; l + 1 < n_layers; ++l) {
    if (l % config.layer_interval == 0) length = pyramidContextKept(config, l, n_layers, length - window) + window;
    lengths[static_cast<size_t>(l + 1)] = length;
  }
  return lengths;
}

double pyramidRatio(const KvPolicyConfig& config, int64_t n_layers, int64_t prompt_tokens) {
  int64_t total = 0;
  for (int64_t length : pyramidLengths(config, n_layers, prompt_tokens)) total += length;
  return static_cast<double>(total) / static_cast<double>(std::max<int64_t>(1, n_layers * prompt_tokens));
}

// The largest value of `knob` in [low, high] whose cache stays within the target (the kept total grows with it).
template <typename Knob>
double largestWithin(KvPolicyConfig trial, Knob knob, double low, double high, int64_t n_layers, int64_t prompt_tokens) {
  const auto fits = [&](double value) {
    knob(trial) = value;
    return pyramidRatio(trial, n_layers, prompt_tokens) <= trial.target_ratio;
  };
  if (fits(high)) return high;
  for (int i = 0; i < 48; ++i) {
    const double mid = (low + high) / 2;
    (fits(mid) ? low : high) = mid;
  }
  return low;
}

// The decay that lands the cache at the target. When even decay 0 keeps too much (short prompts, where the recent
// window and min_context dominate), a smaller recent window is taken if one reaches the target (the reference's
// stronger settings); if none does, the window stays as configured: shrinking it cannot meet the target and costs
// quality (its queries choose what the deeper layers keep).
KvPolicyConfig solvePyramidTarget(const KvPolicyConfig& config, int64_t n_layers, int64_t prompt_tokens) {
  KvPolicyConfig solved = config;
  solved.decay_ratio = largestWithin(config, [](KvPolicyConfig& c) -> double& { return c.decay_ratio; }, 0, 1, n_layers, prompt_tokens);
  if (solved.decay_ratio > 0 || pyramidRatio(solved, n_layers, prompt_tokens) <= config.target_ratio) return solved;
  KvPolicyConfig narrowest = solved;
  narrowest.recent_ratio = 0;
  if (pyramidRatio(narrowest, n_layers, prompt_tokens) > config.target_ratio) return solved;
  solved.recent_ratio = largestWithin(solved, [](KvPolicyConfig& c) -> double& { return c.recent_ratio; }, 0,
                                      config.recent_ratio, n_layers, prompt_tokens);
  return solved;
}

}  // namespace

const char* kvPolicyName(KvPolicyKind kind) {
  switch (kind) {
    case KvPolicyKind::Full: return "full";
    case KvPolicyKind::Pyramid: return "pyramid";
    case KvPolicyKind::Streaming: return "streaming";
    case KvPolicyKind::H2O: return "h2o";
  }
  return "unknown";
}

KvPolicyKind parseKvPolicy(const std::string& name) {
  for (KvPolicyKind kind : {KvPolicyKind::Full, KvPolicyKind::Pyramid, KvPolicyKind::Streaming, KvPolicyKind::H2O}) {
    if (name == kvPolicyName(kind)) return kind;
  }
  throw std::invalid_argument("unknown KV policy \"" + name + "\": use full, pyramid, streaming or h2o");
}

void validateKvPolicy(const KvPolicyConfig& config) {
  requireRange(config.recent_ratio, 0, 1, "recentRatio");
  requireRange(config.decay_ratio, 0, 1, "decayRatio");
  requireRange(config.gen_decay_ratio, 0, 1, "genDecayRatio");
  requireRange(config.gen_compress_ratio, 0, 1, "genCompressRatio");
  requireRange(config.target_ratio, 0, 1, "targetRatio");
  requireRange(config.distance_weight, 0, 1e6, "distanceWeight");
  requireRange(static_cast<double>(config.layer_interval), 1, 1e9, "layerInterval");
  requireRange(static_cast<double>(config.min_context), 0, 1e12, "minContext");
  requireRange(static_cast<double>(config.sink_tokens), 0, 1e12, "sinkTokens");
  requireRange(static_cast<double>(config.exceed_length), 1, 1e12, "exceedLength");
  requireRange(static_cast<double>(config.max_layer_tokens), 0, 1e12, "maxLayerTokens");
  if (config.max_layer_tokens > 0 && config.max_layer_tokens <= config.sink_tokens)
    throw std::invalid_argument("KV option maxLayerTokens (" + std::to_string(config.max_layer_tokens) +
                                ") must exceed sinkTokens (" + std::to_string(config.sink_tokens) + ")");
}

double pyramidKeepShare(int64_t layer, int64_t n_layers, double decay_ratio) {
  return cosineShare(layer, n_layers, decay_ratio);
}

int64_t decodeChunkKeep(const KvPolicyConfig& config, int64_t layer, int64_t n_layers) {
  const double g = cosineShare(layer, n_layers, config.gen_decay_ratio);
  return std::max<int64_t>(static_cast<int64_t>(static_cast<double>(config.exceed_length) * config.gen_compress_ratio * g), 1);
}

int64_t recentWindow(const KvPolicyConfig& config, int64_t prompt_tokens) {
  const auto recent = static_cast<int64_t>(static_cast<double>(prompt_tokens) * config.recent_ratio);
  return std::min(prompt_tokens, recent + 1);
}

int64_t uniformBudget(const KvPolicyConfig& config, int64_t prompt_tokens) {
  const double ratio = config.target_ratio > 0 ? config.target_ratio : kDefaultUniformRatio;
  const auto budget = static_cast<int64_t>(static_cast<double>(prompt_tokens) * ratio);
  return std::min(prompt_tokens, std::max({budget, config.min_context, config.sink_tokens + 1}));
}

int64_t pyramidContextKept(const KvPolicyConfig& config, int64_t layer, int64_t n_layers, int64_t context) {
  const double share = pyramidKeepShare(layer, n_layers, config.decay_ratio);
  if (share >= 1.0 || context <= 0) return std::max<int64_t>(context, 0);
  const auto kept = static_cast<int64_t>(static_cast<double>(context) * share);
  return kept <= config.min_context ? context : kept;
}

KvPlan planKv(const KvPolicyConfig& config, int64_t n_layers, int64_t prompt_tokens) {
  validateKvPolicy(config);
  if (n_layers <= 0 || prompt_tokens < 0) throw std::invalid_argument("a KV plan needs layers and a prompt length");
  KvPlan plan;
  plan.resolved = config;
  switch (config.kind) {
    case KvPolicyKind::Full:
      plan.layer_tokens.assign(static_cast<size_t>(n_layers), prompt_tokens);
      break;
    case KvPolicyKind::Streaming:
    case KvPolicyKind::H2O:
      plan.layer_tokens.assign(static_cast<size_t>(n_layers), uniformBudget(config, prompt_tokens));
      break;
    case KvPolicyKind::Pyramid:
      if (config.target_ratio > 0) plan.resolved = solvePyramidTarget(config, n_layers, prompt_tokens);
      plan.layer_tokens = pyramidLengths(plan.resolved, n_layers, prompt_tokens);
      break;
  }
  if (config.max_layer_tokens > 0 && config.kind != KvPolicyKind::Full) {
    for (int64_t& length : plan.layer_tokens) length = std::min(length, config.max_layer_tokens);
  }
  for (int64_t length : plan.layer_tokens) plan.total_tokens += length;
  plan.ratio = prompt_tokens == 0 ? 1.0 : static_cast<double>(plan.total_tokens) / static_cast<double>(n_layers * prompt_tokens);
  return plan;
}

}  // namespace pc
