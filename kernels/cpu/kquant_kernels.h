// K-quant weights (Q4_K, Q5_K, Q6_K) against Q8_K activations, as llama.cpp pairs them. Internal to the kquant
// kernel files: kquant_kernels.cc holds the scalar reference (ggml's *_ref / *_generic semantics) and the lookup,
// kquant_kernels_avx2.cc and kquant_kernels_avx512.cc the SIMD versions, which share these pieces.
//
// A 256-weight super-block of Q4_K/Q5_K is 8 sub-blocks of 32 weights, each with a 6-bit scale and a 6-bit min:
//   x = d * scale[s] * q - dmin * min[s]            q in 0..15 (Q4_K) or 0..31 (Q5_K)
// so dot(x, y) over a super-block, with y = dy * a (Q8_K), is
//   dy * (d * sum_s scale[s] * sum(q * a)  -  dmin * sum_s min[s] * sum_{s's 32 a})
// and the second sum comes from the activation's bsums (sums of each 16 a), never touching the weights.
// Q6_K is 16 sub-blocks of 16 with a signed 8-bit scale and q in 0..63 stored with a +32 offset:
//   x = d * scale[s] * (q - 32),  the -32 part again a bsums term.
#pragma once

#include <cstdint>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "engine/ggml_type.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc::cpu::kquant {

#if defined(__AVX2__)
// The 12 packed scale bytes of Q4_K/Q5_K as 16 plain bytes: scale[0..7] then min[0..7], each 0..63. Packed layout
// (ggml's get_scale_min_k4, scaleMinK4 in kquant_kernels.cc), as 32-bit words w0 w1 w2:
//   scale[0..3] = w0 & 63                    min[0..3] = w1 & 63
//   scale[4..7] = w2 low nibbles | top 2 bits of w0's bytes << 4
//   min[4..7]   = w2 high nibbles | top 2 bits of w1's bytes << 4
// Loads 16 bytes: the 4 after the scales belong to the same block. Static: each ISA's file compiles its own copy (a
// shared inline copy could come from the AVX-512 file, and the linker may hand it to the AVX2 file's callers).
static inline __m128i unpackScalesMins(const uint8_t* packed) {
  const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  const __m128i low = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(2, 1, 2, 0)), _mm_set_epi32(4, 0, 0, 0)),  // w0 w2 w1 w2>>4
      _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
  const __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(1, 1, 0, 0)), 2),  // w0 w0 w1 w1
                                    _mm_set_epi32(0x30303030, 0, 0x30303030, 0));  // their bits 6,7 -> 4,5
  return _mm_or_si128(low, top);
}
#endif

// ggml's quantize_row_q8_K_ref: per 256 values, the value of largest magnitude (the first, keeping its sign) maps to
// -127, q = round-half-even(x * -127/max) capped at 127, d = 1/iscale, bsums = sums of each 16 q. Every ISA's
// prepare_activation produces exactly these bytes.
void quantizeRowQ8K(const float* x, void* out, int64_t n);

// ggml's dequantize_row_q4_K / q5_K / q6_K. The SIMD tables use them too: decoding whole rows is for embedding
// lookups and tests, never on a hot path.
void dequantizeRowQ4K(const void* weight_row, float* out, int64_t n);
void dequantizeRowQ5K(const void* weight_row, float* out, int64_t n);
void dequantizeRowQ6K(const void* weight_row, float* out, int64_t n);

// The SIMD tables for `type`, or nullptr when this build has no such kernels (non-x86, or the type is not a K-quant).
const WeightKernels* avx2Kernels(GgmlType type);
const WeightKernels* avx512Kernels(GgmlType type);

}  // namespace pc::cpu::kquant
