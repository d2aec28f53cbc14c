// Random but well-formed weight rows of every type the kernel tables handle, for the kernel tests and benchmarks.
// Any bit pattern is a valid quantized weight, so a row is random bytes with only its f16 scale fields overwritten
// by sane values: no quantizer is involved, and every code path (Q8_0's -128, Q6_K's negative scales) is reached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "engine/ggml_type.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {

// Bytes of one row of `cols` elements of `type` (cols a multiple of the type's block size).
inline size_t weightRowBytes(GgmlType type, int64_t cols) {
  const GgmlTypeInfo* info = ggmlTypeInfo(static_cast<uint32_t>(type));
  return static_cast<size_t>(cols / info->block_size * info->block_bytes);
}

// `rows` rows of `cols` elements, contiguous. Float types hold N(0, 1) values; quantized blocks get scales d of
// magnitude ~1/64 with random sign, and mins (m, dmin) within +-1/16.
inline std::vector<uint8_t> randomWeightRows(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t count = rows * cols;
  std::vector<uint8_t> data(weightRowBytes(type, cols) * static_cast<size_t>(rows));
  const auto put16 = [&](size_t offset, uint16_t value) { std::memcpy(&data[offset], &value, sizeof value); };
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < count; ++i) {
        const float value = normal(rng);
        std::memcpy(&data[i * sizeof value], &value, sizeof value);
      }
      return data;
    case GgmlType::F16:
      for (int64_t i = 0; i < count; ++i) put16(i * 2, f32ToF16(normal(rng)));
      return data;
    case GgmlType::BF16:
      for (int64_t i = 0; i < count; ++i) put16(i * 2, f32ToBf16(normal(rng)));
      return data;
    default:
      break;
  }
  for (uint8_t& byte : data) byte = static_cast<uint8_t>(rng());
  // Byte offsets of each block's f16 scale (d) and min (m, dmin) fields; -1 where the type has none.
  size_t scale = 0;
  long min = -1;
  switch (type) {
    case GgmlType::Q4_1: min = offsetof(BlockQ4_1, m); break;
    case GgmlType::Q5_1: min = offsetof(BlockQ5_1, m); break;
    case GgmlType::Q4_K: min = offsetof(BlockQ4_K, dmin); break;
    case GgmlType::Q5_K: min = offsetof(BlockQ5_K, dmin); break;
    case GgmlType::Q6_K: scale = offsetof(BlockQ6_K, d); break;
    default: break;
  }
  const GgmlTypeInfo* info = ggmlTypeInfo(static_cast<uint32_t>(type));
  for (size_t block = 0; block < data.size(); block += static_cast<size_t>(info->block_bytes)) {
    const float magnitude = 0.5f + 0.5f * (uniform(rng) + 1.0f);
    put16(block + scale, f32ToF16((rng() & 1 ? magnitude : -magnitude) / 64.0f));
    if (min >= 0) put16(block + static_cast<size_t>(min), f32ToF16(uniform(rng) / 16.0f));
  }
  return data;
}

}  // namespace pc::cpu
