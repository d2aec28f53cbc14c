// The 32-weight block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against Q8_0/Q8_1 activations, as llama.cpp pairs them
// (ggml-cpu type_traits vec_dot_type). Internal to the block32 kernel files: block32_kernels.cc holds the scalar
// reference (ggml's *_ref / *_generic semantics) and the lookup, block32_kernels_avx2.cc and _avx512.cc the SIMD
// versions, which share block32_simd.h.
//
// The five formats differ along three axes only, so every kernel is one template over Block32Format:
//   bits    4, 5 or 8 per weight (5 = a nibble plus one bit from the 32-bit qh word: bit j belongs to weight j)
//   offset  "_0" formats store q + offset and mean x = d * q   (Q4_0: q - 8, Q5_0: q - 16, Q8_0: stored signed)
//   min     "_1" formats mean x = d * q + m with q >= 0; their Q8_1 activations carry s = dy * sum(a), so the min's
//           share of a block's dot product is m * s without touching the activation bytes again.
// Per block:  dot = dx * dy * sum_j(q_j * a_j)  [+ m * s],  sum_j exact in int32.
#pragma once

#include <type_traits>

#include "engine/ggml_type.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc::cpu::block32 {

template <class Block>
struct Format;

template <>
struct Format<BlockQ4_0> {
  static constexpr GgmlType kType = GgmlType::Q4_0;
  using Activation = BlockQ8_0;
  static constexpr int kBits = 4, kOffset = 8;
};
template <>
struct Format<BlockQ4_1> {
  static constexpr GgmlType kType = GgmlType::Q4_1;
  using Activation = BlockQ8_1;
  static constexpr int kBits = 4, kOffset = 0;
};
template <>
struct Format<BlockQ5_0> {
  static constexpr GgmlType kType = GgmlType::Q5_0;
  using Activation = BlockQ8_0;
  static constexpr int kBits = 5, kOffset = 16;
};
template <>
struct Format<BlockQ5_1> {
  static constexpr GgmlType kType = GgmlType::Q5_1;
  using Activation = BlockQ8_1;
  static constexpr int kBits = 5, kOffset = 0;
};
template <>
struct Format<BlockQ8_0> {
  static constexpr GgmlType kType = GgmlType::Q8_0;
  using Activation = BlockQ8_0;
  static constexpr int kBits = 8, kOffset = 0;
};

// "_1" formats: unsigned q plus a per-block min, paired with Q8_1. The others decode to signed q.
template <class Block>
constexpr bool kHasMin = std::is_same_v<typename Format<Block>::Activation, BlockQ8_1>;

template <class Activation>
constexpr GgmlType kActivationType = std::is_same_v<Activation, BlockQ8_1> ? GgmlType::Q8_1 : GgmlType::Q8_0;

// Every activation quantizer of every ISA produces ggml's Q8_0 / Q8_1 blocks: d = amax / 127, a = round(x / d), and
// for Q8_1 s = d * sum(a) (d unrounded there, as ggml). The reference rounds half away from zero (roundf, as
// quantize_row_q8_0_ref); the SIMD ones compute 127 / amax and round half to even, as ggml's x86 quantize_row_q8_0
// does, so the two differ only where x / d lands within an ulp of a half.

// The tables per ISA; the SIMD ones are nullptr where the file was built without that ISA (non-x86).
const WeightKernels* scalarKernels(GgmlType type);
const WeightKernels* avx2Kernels(GgmlType type);
const WeightKernels* avx512Kernels(GgmlType type);

}  // namespace pc::cpu::block32
