#include "engine/kv/kv_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/fp16.h"

namespace pc {

void KvLayer::append(const float* k, const float* v, const int32_t* positions, int64_t n) {
  if (n > 0 && !positions_.empty() && positions[0] <= positions_.back())
    throw std::logic_error("KV rows must be appended in position order (got " + std::to_string(positions[0]) +
                           " after " + std::to_string(positions_.back()) + ")");
  const size_t old_values = keys_.size();
  const size_t added = static_cast<size_t>(n * kv_dim_);
  keys_.resize(old_values + added);
  values_.resize(old_values + added);
  for (size_t i = 0; i < added; ++i) {
    keys_[old_values + i] = cpu::f32ToF16(k[i]);
    values_[old_values + i] = cpu::f32ToF16(v[i]);
  }
  positions_.insert(positions_.end(), positions, positions + n);
  scores_.resize(positions_.size(), 0.0f);
}

void KvLayer::truncateFrom(int32_t position) {
  const auto first_dropped = std::lower_bound(positions_.begin(), positions_.end(), position);
  const size_t kept = static_cast<size_t>(first_dropped - positions_.begin());
  positions_.resize(kept);
  scores_.resize(kept);
  keys_.resize(kept * static_cast<size_t>(kv_dim_));
  values_.resize(kept * static_cast<size_t>(kv_dim_));
}

void KvLayer::keepRows(const std::vector<int64_t>& rows) {
  const size_t width = static_cast<size_t>(kv_dim_);
  size_t out = 0;
  for (int64_t row : rows) {
    const size_t in = static_cast<size_t>(row);
    if (in != out) {
      std::copy_n(keys_.begin() + in * width, width, keys_.begin() + out * width);
      std::copy_n(values_.begin() + in * width, width, values_.begin() + out * width);
      positions_[out] = positions_[in];
      scores_[out] = scores_[in];
    }
    ++out;
  }
  positions_.resize(out);
  scores_.resize(out);
  keys_.resize(out * width);
  values_.resize(out * width);
}

void KvLayer::clear() {
  keys_.clear();
  values_.clear();
  positions_.clear();
  scores_.clear();
}

KvCache::KvCache(int64_t n_layers, int64_t kv_dim) : layers_(static_cast<size_t>(n_layers), KvLayer(kv_dim)) {}

uint64_t KvCache::bytes() const {
  uint64_t total = 0;
  for (const KvLayer& layer : layers_) total += layer.bytes();
  return total;
}

uint64_t KvCache::bytesBefore(int32_t position) const {
  uint64_t total = 0;
  for (const KvLayer& layer : layers_) {
    const int32_t* begin = layer.positions();
    const auto rows = static_cast<uint64_t>(std::lower_bound(begin, begin + layer.length(), position) - begin);
    total += rows * static_cast<uint64_t>(layer.rowBytes());
  }
  return total;
}

uint64_t KvCache::fullBytes(int64_t tokens) const {
  if (layers_.empty()) return 0;
  return static_cast<uint64_t>(tokens) * static_cast<uint64_t>(layers_[0].rowBytes()) * layers_.size();
}

void KvCache::truncateFrom(int32_t position) {
  for (KvLayer& layer : layers_) layer.truncateFrom(position);
}

void KvCache::clear() {
  for (KvLayer& layer : layers_) layer.clear();
}

}  // namespace pc
