// Scalar reference for the K-quant kernels: ggml's quantize_row_q8_K_ref, dequantize_row_q{4,5,6}_K and the
// integer structure of ggml_vec_dot_q{4,5,6}_K_q8_K_generic, written for reading. The SIMD files must agree with
// it (kquant_kernels_test.cc, weight_kernels_test.cc). Also assembles the per-ISA lookup.
#include "kernels/cpu/kquant_kernels.h"

#include <cmath>
#include <type_traits>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {
namespace kquant {
namespace {

// Round to nearest, ties to even, as ggml's nearest_int (adding 1.5 * 2^23 leaves the rounded integer in the low
// mantissa bits); exact for |x| < 2^22, which |x * iscale| <= 127 always is.
int nearestInt(float x) {
  const float shifted = x + 12582912.f;
  return static_cast<int>(floatBits(shifted) & 0x007fffff) - 0x00400000;
}

// ggml's get_scale_min_k4: the scale and min of sub-block j (0..7) from the 12 packed bytes, one byte at a time.
void scaleMinK4(int j, const uint8_t* packed, int* scale, int* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
    *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

template <class Block>
constexpr bool kHasFifthBit = std::is_same_v<Block, BlockQ5_K>;

// The 256 unsigned quants of a Q4_K/Q5_K block in element order. Each 64 elements share 32 bytes of qs: low nibbles
// are elements 0..31, high nibbles 32..63. Q5_K's fifth bits: bit 2c of qh[l] for element 64c + l, bit 2c+1 for
// element 64c + 32 + l.
template <class Block>
void quantsQ4K(const Block& block, uint8_t q[kBlockK]) {
  for (int chunk = 0; chunk < kBlockK / 64; ++chunk) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t packed = block.qs[32 * chunk + l];
      uint8_t low = packed & 0x0f, high = packed >> 4;
      if constexpr (kHasFifthBit<Block>) {
        low |= ((block.qh[l] >> (2 * chunk)) & 1) << 4;
        high |= ((block.qh[l] >> (2 * chunk + 1)) & 1) << 4;
      }
      q[64 * chunk + l] = low;
      q[64 * chunk + 32 + l] = high;
    }
  }
}

// The 256 quants of a Q6_K block in element order, offset removed (-32..31). Each 128 elements share 64 bytes of ql
// and 32 of qh: element 32i + l (i = 0..3, l < 32) takes the low (i < 2) or high (i >= 2) nibble of
// ql[l + 32 * (i % 2)] and bits 2i, 2i+1 of qh[l] as its top two bits.
void quantsQ6K(const BlockQ6_K& block, int8_t q[kBlockK]) {
  for (int half = 0; half < kBlockK / 128; ++half) {
    const uint8_t* ql = block.ql + 64 * half;
    const uint8_t* qh = block.qh + 32 * half;
    for (int i = 0; i < 4; ++i) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t nibble = i < 2 ? ql[l + 32 * (i % 2)] & 0x0f : ql[l + 32 * (i % 2)] >> 4;
        const uint8_t top = (qh[l] >> (2 * i)) & 3;
        q[128 * half + 32 * i + l] = static_cast<int8_t>(nibble | (top << 4)) - 32;
      }
    }
  }
}

template <class Block>
void dequantizeQ4K(const void* weight_row, float* out, int64_t n) {
  const Block* blocks = static_cast<const Block*>(weight_row);
  for (int64_t b = 0; b < n / kBlockK; ++b) {
    const Block& block = blocks[b];
    const float d = f16ToF32(block.d), dmin = f16ToF32(block.dmin);
    uint8_t q[kBlockK];
    quantsQ4K(block, q);
    for (int s = 0; s < 8; ++s) {
      int scale, min;
      scaleMinK4(s, block.scales, &scale, &min);
      const float ds = d * scale, ms = dmin * min;  // rounded to float first, as ggml does
      for (int l = 0; l < 32; ++l) out[32 * s + l] = ds * q[32 * s + l] - ms;
    }
    out += kBlockK;
  }
}

// One Q4_K/Q5_K row against one Q8_K row. Integers are exact per block; floats enter once per block. (ggml's
// generic version spreads the integer sum over 8 float lanes, so its last bits differ.)
template <class Block>
float dotQ4K(int64_t n, const Block* w, const BlockQ8_K* a) {
  float sum = 0;
  for (int64_t b = 0; b < n / kBlockK; ++b) {
    uint8_t q[kBlockK];
    quantsQ4K(w[b], q);
    int32_t scaled = 0, mins = 0;
    for (int s = 0; s < 8; ++s) {
      int scale, min;
      scaleMinK4(s, w[b].scales, &scale, &min);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) dot += q[32 * s + l] * a[b].qs[32 * s + l];
      scaled += scale * dot;
      mins += min * (a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);  // sum of the sub-block's 32 activations
    }
    sum += f16ToF32(w[b].d) * a[b].d * scaled - f16ToF32(w[b].dmin) * a[b].d * mins;
  }
  return sum;
}

void dequantizeQ6K(const void* weight_row, float* out, int64_t n) {
  const BlockQ6_K* blocks = static_cast<const BlockQ6_K*>(weight_row);
  for (int64_t b = 0; b < n / kBlockK; ++b) {
    const float d = f16ToF32(blocks[b].d);
    int8_t q[kBlockK];
    quantsQ6K(blocks[b], q);
    for (int i = 0; i < kBlockK; ++i) out[i] = d * blocks[b].scales[i / 16] * q[i];
    out += kBlockK;
  }
}

// One Q6_K row against one Q8_K row: like ggml's generic version, the -32 is applied to the weights directly (the
// SIMD kernels take it from bsums instead; the integer result is the same).
float dotQ6K(int64_t n, const BlockQ6_K* w, const BlockQ8_K* a) {
  float sum = 0;
  for (int64_t b = 0; b < n / kBlockK; ++b) {
    int8_t q[kBlockK];
    quantsQ6K(w[b], q);
    int32_t scaled = 0;
    for (int s = 0; s < 16; ++s) {
      int32_t dot = 0;
      for (int l = 0; l < 16; ++l) dot += q[16 * s + l] * a[b].qs[16 * s + l];
      scaled += w[b].scales[s] * dot;
    }
    sum += f16ToF32(w[b].d) * a[b].d * scaled;
  }
  return sum;
}

template <class Block, float (*kDot)(int64_t, const Block*, const BlockQ8_K*)>
void dotRows(int64_t n, const void* weight_row, const void* activations, size_t activation_stride, int count,
             float* out) {
  for (int r = 0; r < count; ++r) {
    const auto* row = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(activations) +
                                                         r * activation_stride);
    out[r] = kDot(n, static_cast<const Block*>(weight_row), row);
  }
}

constexpr WeightKernels kScalarQ4K = {GgmlType::Q4_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8K,
                                      dotRows<BlockQ4_K, dotQ4K<BlockQ4_K>>, dequantizeRowQ4K};
constexpr WeightKernels kScalarQ5K = {GgmlType::Q5_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8K,
                                      dotRows<BlockQ5_K, dotQ4K<BlockQ5_K>>, dequantizeRowQ5K};
constexpr WeightKernels kScalarQ6K = {GgmlType::Q6_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8K,
                                      dotRows<BlockQ6_K, dotQ6K>, dequantizeRowQ6K};

}  // namespace

void quantizeRowQ8K(const float* x, void* out, int64_t n) {
  BlockQ8_K* blocks = static_cast<BlockQ8_K*>(out);
  for (int64_t b = 0; b < n / kBlockK; ++b, x += kBlockK) {
    BlockQ8_K& y = blocks[b];
    float max = 0, amax = 0;
    for (int i = 0; i < kBlockK; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    if (amax == 0) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    const float iscale = -127.f / max;
    for (int i = 0; i < kBlockK; ++i) {
      const int v = nearestInt(iscale * x[i]);
      y.qs[i] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < kBlockK / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += y.qs[16 * g + i];
      y.bsums[g] = static_cast<int16_t>(sum);
    }
    y.d = 1 / iscale;
  }
}

void dequantizeRowQ4K(const void* weight_row, float* out, int64_t n) { dequantizeQ4K<BlockQ4_K>(weight_row, out, n); }
void dequantizeRowQ5K(const void* weight_row, float* out, int64_t n) { dequantizeQ4K<BlockQ5_K>(weight_row, out, n); }
void dequantizeRowQ6K(const void* weight_row, float* out, int64_t n) { dequantizeQ6K(weight_row, out, n); }

}  // namespace kquant

const WeightKernels* kquantWeightKernels(GgmlType type, Isa isa) {
  if (isa >= Isa::Avx512) {
    if (const WeightKernels* kernels = kquant::avx512Kernels(type)) return kernels;
  }
  if (isa >= Isa::Avx2) {
    if (const WeightKernels* kernels = kquant::avx2Kernels(type)) return kernels;
  }
  switch (type) {
    case GgmlType::Q4_K: return &kquant::kScalarQ4K;
    case GgmlType::Q5_K: return &kquant::kScalarQ5K;
    case GgmlType::Q6_K: return &kquant::kScalarQ6K;
    default: return nullptr;
  }
}

}  // namespace pc::cpu
