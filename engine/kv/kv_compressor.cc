#include "engine/kv/kv_compressor.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace pc {
namespace {

// Keeps every row of `kv` outside [begin, end) and the `keep` best of those inside (see rowsToKeep); returns how
// many rows before `before` survive, so a caller can carry an index across the cut.
int64_t keepWithin(KvLayer& kv, int64_t begin, int64_t end, int64_t keep, bool by_score, int64_t sinks, int64_t before) {
  const std::vector<int64_t> inside =
      rowsToKeep(by_score ? kv.scores() + begin : nullptr, kv.positions() + begin, end - begin, keep, sinks);
  std::vector<int64_t> rows(static_cast<size_t>(begin));
  std::iota(rows.begin(), rows.end(), 0);
  for (int64_t row : inside) rows.push_back(begin + row);
  for (int64_t row = end; row < kv.length(); ++row) rows.push_back(row);
  kv.keepRows(rows);
  return std::lower_bound(rows.begin(), rows.end(), before) - rows.begin();
}

}  // namespace

std::vector<int64_t> rowsToKeep(const float* scores, const int32_t* positions, int64_t count, int64_t keep, int64_t sinks) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  if (keep >= count) return order;
  const auto rank = [&](int64_t row) {
    if (positions[row] < sinks) return std::numeric_limits<double>::infinity();
    return scores ? static_cast<double>(scores[row]) : static_cast<double>(positions[row]);
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rank(a) > rank(b); });
  order.resize(static_cast<size_t>(std::max<int64_t>(keep, 0)));
  std::sort(order.begin(), order.end());
  return order;
}

KvCompressor::KvCompressor(const KvPolicyConfig& config, int64_t n_layers)
    : config_(config), n_layers_(n_layers), schedule_(config), settled_(static_cast<size_t>(n_layers), 0) {
  validateKvPolicy(config_);
}

void KvCompressor::reset() {
  std::fill(settled_.begin(), settled_.end(), 0);
  selecting_ = false;
}

void KvCompressor::truncated(const KvCache& cache) {
  for (int64_t l = 0; l < n_layers_; ++l) {
    settled_[static_cast<size_t>(l)] = std::min(settled_[static_cast<size_t>(l)], cache.layer(l).length());
  }
}

void KvCompressor::beginPrompt(int64_t reused, int64_t fresh) {
  const int64_t prompt_tokens = reused + fresh;
  schedule_ = planKv(config_, n_layers_, prompt_tokens).resolved;
  window_ = recentWindow(schedule_, prompt_tokens);
  if (config_.kind == KvPolicyKind::Pyramid) {
    // Only a prompt whose whole recent window is computed now can score and drop; a short extension is decoded.
    selecting_ = fresh >= window_;
  }
}

void KvCompressor::beginDecode() { selecting_ = false; }

bool KvCompressor::scoring(int64_t /*layer*/, int64_t stream, int64_t* first_query, const float** weights) {
  switch (config_.kind) {
    case KvPolicyKind::Full:
    case KvPolicyKind::Streaming:
      return false;
    case KvPolicyKind::H2O:
      // Heavy hitters: the attention every query gives, summed.
      *first_query = 0;
      weights_.assign(static_cast<size_t>(stream), 1.0f);
      break;
    case KvPolicyKind::Pyramid: {
      const auto scale = 1.0f / static_cast<float>(window_);
      if (selecting_) {
        // The recent window's queries, linspace(1, distance_weight) from oldest to newest, averaged.
        *first_query = stream - window_;
        weights_.resize(static_cast<size_t>(window_));
        for (int64_t i = 0; i < window_; ++i) {
          const double t = window_ == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(window_ - 1);
          weights_[static_cast<size_t>(i)] = static_cast<float>(1.0 + (config_.distance_weight - 1.0) * t) * scale;
        }
      } else {
        *first_query = 0;
        weights_.assign(static_cast<size_t>(stream), static_cast<float>(config_.distance_weight) * scale);
      }
      break;
    }
  }
  *weights = weights_.data();
  return true;
}

void KvCompressor::survivors(int64_t layer, const KvLayer& kv, int64_t stream, std::vector<int64_t>* keep) {
  keep->clear();
  if (!selecting_ || layer % config_.layer_interval != 0) return;
  const int64_t context = stream - window_;
  const int64_t kept = pyramidContextKept(schedule_, layer, n_layers_, context);
  if (kept >= context) return;
  const int64_t first_row = kv.length() - stream;
  *keep = rowsToKeep(kv.scores() + first_row, kv.positions() + first_row, context, kept, config_.sink_tokens);
  for (int64_t i = context; i < stream; ++i) keep->push_back(i);
}

void KvCompressor::compress(KvCache& cache) {
  const bool by_score = config_.kind != KvPolicyKind::Streaming;
  const int64_t sinks = config_.kind == KvPolicyKind::H2O ? 0 : config_.sink_tokens;
  for (int64_t l = 0; l < n_layers_; ++l) {
    KvLayer& kv = cache.layer(l);
    int64_t& settled = settled_[static_cast<size_t>(l)];
    int64_t protect = 0;  // newest rows the cap leaves alone
    switch (config_.kind) {
      case KvPolicyKind::Full:
        continue;
      case KvPolicyKind::Pyramid:
        if (selecting_) settled = std::max<int64_t>(0, kv.length() - window_);
        while (config_.decode_compression && kv.length() - (window_ - 1) - settled >= config_.exceed_length) {
          const int64_t chunk_keep = decodeChunkKeep(config_, l, n_layers_);
          keepWithin(kv, settled, settled + config_.exceed_length, chunk_keep, true, sinks, 0);
          settled += chunk_keep;
        }
        protect = window_;
        break;
      case KvPolicyKind::Streaming:
      case KvPolicyKind::H2O: {
        // The budget is a share of every token seen so far (H2O's definition), so the cache stays at that share
        // while generating; max_layer_tokens bounds it outright.
        const int64_t seen = kv.length() == 0 ? 0 : kv.positions()[kv.length() - 1] + 1;
        const int64_t budget = uniformBudget(config_, seen);
        if (config_.kind == KvPolicyKind::Streaming) {
          if (kv.length() > budget) keepWithin(kv, 0, kv.length(), budget, false, sinks, 0);
        } else {
          protect = budget / 2;
          if (kv.length() > budget) keepWithin(kv, 0, kv.length() - protect, budget - protect, true, sinks, 0);
        }
        break;
      }
    }
    const int64_t cap = config_.max_layer_tokens;
    if (cap > 0 && kv.length() > cap) {
      protect = by_score ? std::min(protect, cap / 2) : 0;
      settled = keepWithin(kv, 0, kv.length() - protect, cap - protect, by_score, sinks, settled);
    }
  }
  selecting_ = false;
}

}  // namespace pc
