// The KV cache, kept apart from the weights: per layer, rows of keys (after RoPE) and values in f16, each with the
// original position of its token and the attention it has drawn (what compressing policies rank rows by). Layers may
// hold different numbers of rows (compression keeps fewer tokens in deeper layers), and positions need not be
// contiguous; rows stay in position order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/quant_blocks.h"

namespace pc {

class KvLayer {
 public:
  explicit KvLayer(int64_t kv_dim) : kv_dim_(kv_dim) {}

  int64_t length() const { return static_cast<int64_t>(positions_.size()); }
  int64_t kvDim() const { return kv_dim_; }
  const cpu::f16_t* keys() const { return keys_.data(); }      // (length, kv_dim)
  const cpu::f16_t* values() const { return values_.data(); }  // (length, kv_dim)
  const int32_t* positions() const { return positions_.data(); }  // (length,)
  // (length,) attention accumulated per row by the policy's scoring; new rows start at 0.
  float* scores() { return scores_.data(); }
  const float* scores() const { return scores_.data(); }
  uint64_t bytes() const { return static_cast<uint64_t>(length()) * static_cast<uint64_t>(rowBytes()); }
  int64_t rowBytes() const { return 2 * kv_dim_ * static_cast<int64_t>(sizeof(cpu::f16_t)); }

  // Appends n rows: k, v (n, kv_dim) f32, rounded to f16; positions must follow the last cached one.
  void append(const float* k, const float* v, const int32_t* positions, int64_t n);
  // Drops every row whose position is >= `position` (what a request that changes the text from there needs).
  void truncateFrom(int32_t position);
  // Keeps only the given rows (ascending indices), in order.
  void keepRows(const std::vector<int64_t>& rows);
  void clear();

 private:
  int64_t kv_dim_;
  std::vector<cpu::f16_t> keys_;
  std::vector<cpu::f16_t> values_;
  std::vector<int32_t> positions_;
  std::vector<float> scores_;
};

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t kv_dim);

  int64_t layerCount() const { return static_cast<int64_t>(layers_.size()); }
  KvLayer& layer(int64_t l) { return layers_[static_cast<size_t>(l)]; }
  const KvLayer& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }

  uint64_t bytes() const;
  // Bytes of the rows at positions before `position` (what truncateFrom(position) keeps).
  uint64_t bytesBefore(int32_t position) const;
  // Bytes a full cache needs for `tokens` tokens: every layer keeping every token.
  uint64_t fullBytes(int64_t tokens) const;
  void truncateFrom(int32_t position);
  void clear();

 private:
  std::vector<KvLayer> layers_;
};

}  // namespace pc
