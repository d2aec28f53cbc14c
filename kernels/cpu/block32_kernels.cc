// Scalar reference for the 32-weight block formats: the definition the SIMD versions are tested against, and the
// path on machines without AVX2. Semantics are ggml's quantize_row_q8_{0,1}_ref, dequantize_row_q*_ref and
// ggml_vec_dot_q*_q8_*_generic.
#include "kernels/cpu/block32_kernels.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/fp16.h"

namespace pc::cpu {
namespace block32 {
namespace {

// One weight block as 32 integers q with x_j = d * q_j (+ m): nibble j of the 16 packed bytes is weight j (low
// nibbles) or weight j + 16 (high nibbles); for 5 bits, bit j of qh is weight j's fifth bit.
template <class Block>
void unpack(const Block& block, int8_t q[kBlock32]) {
  using F = Format<Block>;
  if constexpr (F::kBits == 8) {
    std::memcpy(q, block.qs, kBlock32);
  } else {
    uint32_t qh = 0;
    if constexpr (F::kBits == 5) std::memcpy(&qh, block.qh, sizeof qh);
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const int low = (block.qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
      const int high = (block.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      q[j] = static_cast<int8_t>(low - F::kOffset);
      q[j + 16] = static_cast<int8_t>(high - F::kOffset);
    }
  }
}

template <class Block>
void dequantizeRow(const void* weight_row, float* out, int64_t n) {
  const Block* blocks = static_cast<const Block*>(weight_row);
  for (int64_t b = 0; b < n / kBlock32; ++b) {
    int8_t q[kBlock32];
    unpack(blocks[b], q);
    const float d = f16ToF32(blocks[b].d);
    for (int j = 0; j < kBlock32; ++j) {
      if constexpr (kHasMin<Block>) {
        out[b * kBlock32 + j] = q[j] * d + f16ToF32(blocks[b].m);
      } else {
        out[b * kBlock32 + j] = q[j] * d;
      }
    }
  }
}

// quantize_row_q8_0_ref / quantize_row_q8_1_ref.
template <class Activation>
void quantizeRow(const float* x, void* out, int64_t n) {
  Activation* blocks = static_cast<Activation*>(out);
  for (int64_t b = 0; b < n / kBlock32; ++b) {
    const float* v = x + b * kBlock32;
    float amax = 0.0f;
    for (int j = 0; j < kBlock32; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kBlock32; ++j) {
      blocks[b].qs[j] = static_cast<int8_t>(std::roundf(v[j] * id));
      sum += blocks[b].qs[j];
    }
    blocks[b].d = f32ToF16(d);
    if constexpr (std::is_same_v<Activation, BlockQ8_1>) blocks[b].s = f32ToF16(static_cast<float>(sum) * d);
  }
}

// out[r] = sum over blocks of dx * dy * sum(q * a) [+ m * s], one activation row at a time.
template <class Block>
void dotRows(int64_t n, const void* weight_row, const void* activations, size_t activation_stride, int count,
             float* out) {
  using Activation = typename Format<Block>::Activation;
  const Block* w = static_cast<const Block*>(weight_row);
  for (int r = 0; r < count; ++r) {
    const Activation* a = reinterpret_cast<const Activation*>(static_cast<const uint8_t*>(activations) +
                                                              r * activation_stride);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / kBlock32; ++b) {
      int8_t q[kBlock32];
      unpack(w[b], q);
      int32_t dot = 0;
      for (int j = 0; j < kBlock32; ++j) dot += q[j] * a[b].qs[j];
      sum += f16ToF32(w[b].d) * f16ToF32(a[b].d) * static_cast<float>(dot);
      if constexpr (kHasMin<Block>) sum += f16ToF32(w[b].m) * f16ToF32(a[b].s);
    }
    out[r] = sum;
  }
}

template <class Block>
const WeightKernels* kernelsFor() {
  using Activation = typename Format<Block>::Activation;
  static const WeightKernels kernels{Format<Block>::kType, kActivationType<Activation>, kBlock32,
                                     quantizeRow<Activation>, dotRows<Block>, dequantizeRow<Block>};
  return &kernels;
}

}  // namespace

const WeightKernels* scalarKernels(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return kernelsFor<BlockQ4_0>();
    case GgmlType::Q4_1: return kernelsFor<BlockQ4_1>();
    case GgmlType::Q5_0: return kernelsFor<BlockQ5_0>();
    case GgmlType::Q5_1: return kernelsFor<BlockQ5_1>();
    case GgmlType::Q8_0: return kernelsFor<BlockQ8_0>();
    default: return nullptr;
  }
}

}  // namespace block32

const WeightKernels* block32WeightKernels(GgmlType type, Isa isa) {
  const WeightKernels* kernels = nullptr;
  if (isa >= Isa::Avx512) kernels = block32::avx512Kernels(type);
  if (!kernels && isa >= Isa::Avx2) kernels = block32::avx2Kernels(type);
  return kernels ? kernels : block32::scalarKernels(type);
}

}  // namespace pc::cpu
