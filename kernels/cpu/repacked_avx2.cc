// AVX2 kernels for repacked Q4_0 / Q8_0 groups (layout in repacked.h): each 64-byte chunk is two ymm of 4 rows x 8
// columns (a "quad" of rows), against the same 64-bit activation broadcast as AVX-512. Without VNNI the byte products
// go through maddubs (unsigned x signed, saturating at int16), so the signs move onto the activation side (|w| and
// a * sign(w), pairs at most 2 * 128 * 127 < 2^15) and madd widens the pairs to int32.
#include "kernels/cpu/repacked.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu::repacked {
namespace {

constexpr int kMaxTile = 4;  // activation rows per pass: 16 ymm registers hold 4 rows' int and float sums of a quad

// Chunk k of a block index, rows 4 quad .. 4 quad + 3, as 32 signed bytes, and the factor their dots carry.
template <GgmlType kType>
struct Quants;

template <>
struct Quants<GgmlType::Q4_0> {
  static constexpr float kUnscale = 1.0f / 16.0f;  // a nibble moved into a byte's high half reads as 16 (q - 8)
  static __m256i load(const uint8_t* quants, int k, int quad) {
    const __m256i packed = _mm256_load_si256(reinterpret_cast<const __m256i*>(quants + 64 * (k / 2) + 32 * quad));
    const __m256i nibbles = k % 2 ? packed : _mm256_slli_epi16(packed, 4);
    return _mm256_and_si256(nibbles, _mm256_set1_epi8(static_cast<char>(0xF0)));
  }
};

template <>
struct Quants<GgmlType::Q8_0> {
  static constexpr float kUnscale = 1.0f;
  static __m256i load(const uint8_t* quants, int k, int quad) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(quants + 64 * k + 32 * quad));
  }
};

// kCount activation rows against one group; acc[quad][t] lane 2r + h: row 4 quad + r, columns 8k + 4h .. + 3.
template <GgmlType kType, int kCount>
void dotTile(int64_t blocks, const uint8_t* group, const uint8_t* activations, size_t stride, float* out,
             size_t out_stride) {
  const uint8_t* quants = group + scaleSectionBytes(blocks);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[2][kCount];
  for (auto& quad : acc) {
    for (__m256& v : quad) v = _mm256_setzero_ps();
  }

  for (int64_t b = 0; b < blocks; ++b) {
    prefetchGroupAhead<kType>(group, quants, b);
    const __m256 scales = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(group + 16 * b)));
    const uint8_t* block_quants = quants + b * quantBytes(kType);
    for (int quad = 0; quad < 2; ++quad) {
      // Each row's scale in both of its lanes.
      const __m256 row_scales = _mm256_permutevar8x32_ps(
          scales, _mm256_add_epi32(_mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), _mm256_set1_epi32(4 * quad)));
      __m256i sums[kCount];
      for (__m256i& v : sums) v = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        const __m256i w = Quants<kType>::load(block_quants, k, quad);
        const __m256i magnitude = _mm256_sign_epi8(w, w);
#pragma GCC unroll 4
        for (int t = 0; t < kCount; ++t) {
          int64_t chunk;
          std::memcpy(&chunk, reinterpret_cast<const BlockQ8_0*>(activations + t * stride)[b].qs + 8 * k, sizeof chunk);
          const __m256i signed_a = _mm256_sign_epi8(_mm256_set1_epi64x(chunk), w);
          sums[t] = _mm256_add_epi32(sums[t], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, signed_a), ones));
        }
      }
#pragma GCC unroll 4
      for (int t = 0; t < kCount; ++t) {
        const f16_t d = reinterpret_cast<const BlockQ8_0*>(activations + t * stride)[b].d;
        acc[quad][t] = _mm256_fmadd_ps(_mm256_mul_ps(row_scales, _mm256_set1_ps(_cvtsh_ss(d))),
                                       _mm256_cvtepi32_ps(sums[t]), acc[quad][t]);
      }
    }
  }

  // Lanes 2r and 2r + 1 are one row's two column halves: hadd pairs them, quad 0's rows before quad 1's per 128 bits.
  const __m256 unscale = _mm256_set1_ps(Quants<kType>::kUnscale);
  for (int t = 0; t < kCount; ++t) {
    const __m256 rows = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_hadd_ps(acc[0][t], acc[1][t])), 0xD8));
    _mm256_storeu_ps(out + t * out_stride, _mm256_mul_ps(rows, unscale));
  }
}

template <GgmlType kType>
void dot(int64_t n, const uint8_t* group, const void* activations, size_t stride, int count, float* out,
         size_t out_stride) {
  using Tile = void (*)(int64_t, const uint8_t*, const uint8_t*, size_t, float*, size_t);
  static constexpr Tile kTiles[kMaxTile] = {dotTile<kType, 1>, dotTile<kType, 2>, dotTile<kType, 3>,
                                            dotTile<kType, 4>};
  for (int t = 0; t < count; t += kMaxTile) {
    kTiles[std::min(count - t, kMaxTile) - 1](n / kBlock32, group, static_cast<const uint8_t*>(activations) + t * stride,
                                              stride, out + t * out_stride, out_stride);
  }
}

}  // namespace

RepackedDotFn avx2Dot(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return dot<GgmlType::Q4_0>;
    case GgmlType::Q8_0: return dot<GgmlType::Q8_0>;
    default: return nullptr;
  }
}

}  // namespace pc::cpu::repacked

#else

namespace pc::cpu::repacked {
RepackedDotFn avx2Dot(GgmlType) { return nullptr; }
}  // namespace pc::cpu::repacked

#endif
