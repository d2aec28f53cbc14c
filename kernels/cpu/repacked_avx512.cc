// AVX-512 VNNI kernels for repacked Q4_0 / Q8_0 groups (layout in repacked.h). Per block index the group's quants
// become four vectors of signed bytes, one 8-column chunk of all 8 rows each; an activation's 8 bytes of a chunk are
// one 64-bit broadcast, so four dpbusd give the 8 rows' dots (two int32 lanes per row, one per half chunk) with no
// shuffle and no gather. The 8 scales are one 128-bit load and one conversion per block index, shared by the tile of
// activation rows.
#include "kernels/cpu/repacked.h"

#if defined(__AVX512F__)
// GCC 12's _mm512_undefined_*() self-initialize (`__m512i __Y = __Y;`), which -W(maybe-)uninitialized reports
// wherever an intrinsic using them is inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu::repacked {
namespace {

constexpr int kMaxTile = 8;  // activation rows per pass over a group: 8 accumulators + 4 weight vectors + temporaries

// How a block index's quants become four vectors w[k] of signed bytes (chunk k), and the factor their dots carry.
template <GgmlType kType>
struct Quants;

template <>
struct Quants<GgmlType::Q4_0> {
  // A nibble moved into a byte's high half reads as 16 (q - 8): two ops per 64 nibbles, no sign extension.
  static constexpr float kUnscale = 1.0f / 16.0f;
  static void load(const uint8_t* quants, __m512i w[4]) {
    const __m512i high = _mm512_set1_epi8(static_cast<char>(0xF0));
    for (int m = 0; m < 2; ++m) {
      const __m512i packed = _mm512_load_si512(quants + 64 * m);
      w[2 * m] = _mm512_and_si512(_mm512_slli_epi16(packed, 4), high);
      w[2 * m + 1] = _mm512_and_si512(packed, high);
    }
  }
};

template <>
struct Quants<GgmlType::Q8_0> {
  static constexpr float kUnscale = 1.0f;
  static void load(const uint8_t* quants, __m512i w[4]) {
    for (int k = 0; k < 4; ++k) w[k] = _mm512_load_si512(quants + 64 * k);
  }
};

// An activation block's d in every lane: F16C converts the first 4 halves of the block (d, then qs) straight from
// memory and lane 0 is broadcast, two ops where a scalar conversion (insert, convert, broadcast) takes three.
inline __m512 activationScale(const BlockQ8_0* a) {
  return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a))));
}

// kCount activation rows against one group. acc[t] lane 2r + h: row r's dot over columns 8k + 4h .. 8k + 4h + 3.
template <GgmlType kType, int kCount>
void dotTile(int64_t blocks, const uint8_t* group, const uint8_t* activations, size_t stride, float* out,
             size_t out_stride) {
  const uint8_t* quants = group + scaleSectionBytes(blocks);
  const __m512i flip = _mm512_set1_epi8(-128);
  const __m512i row_of_lane = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  __m512 acc[kCount];
#pragma GCC unroll 8
  for (int t = 0; t < kCount; ++t) acc[t] = _mm512_setzero_ps();

  for (int64_t b = 0; b < blocks; ++b) {
    prefetchGroupAhead<kType>(group, quants, b);
    __m512i w[4];
    Quants<kType>::load(quants + b * quantBytes(kType), w);
    // dpbusd multiplies unsigned by signed bytes: the activations are the unsigned side as a + 128 (a ^ 0x80), and
    // the excess 128 * sum(w) per lane, which depends on the weights only, is taken off once per tile.
    __m512i excess = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) excess = _mm512_dpbusd_epi32(excess, flip, w[k]);
    const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), excess);
    const __m512 scales = _mm512_permutexvar_ps(
        row_of_lane,
        _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(group + 16 * b)))));
#pragma GCC unroll 8
    for (int t = 0; t < kCount; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(activations + t * stride) + b;
      __m512i dot = start;
      for (int k = 0; k < 4; ++k) {
        int64_t chunk;
        std::memcpy(&chunk, a->qs + 8 * k, sizeof chunk);
        dot = _mm512_dpbusd_epi32(dot, _mm512_xor_si512(_mm512_set1_epi64(chunk), flip), w[k]);
      }
      const __m512 scale = _mm512_mul_ps(scales, activationScale(a));
      acc[t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), acc[t]);
    }
  }

  const __m512i even_lanes = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256 unscale = _mm256_set1_ps(Quants<kType>::kUnscale);
#pragma GCC unroll 8
  for (int t = 0; t < kCount; ++t) {
    const __m512 halves = _mm512_add_ps(acc[t], _mm512_permute_ps(acc[t], 0xB1));  // lane 2r: both halves of row r
    _mm256_storeu_ps(out + t * out_stride,
                     _mm256_mul_ps(_mm512_castps512_ps256(_mm512_permutexvar_ps(even_lanes, halves)), unscale));
  }
}

template <GgmlType kType>
void dot(int64_t n, const uint8_t* group, const void* activations, size_t stride, int count, float* out,
         size_t out_stride) {
  using Tile = void (*)(int64_t, const uint8_t*, const uint8_t*, size_t, float*, size_t);
  static constexpr Tile kTiles[kMaxTile] = {dotTile<kType, 1>, dotTile<kType, 2>, dotTile<kType, 3>,
                                            dotTile<kType, 4>, dotTile<kType, 5>, dotTile<kType, 6>,
                                            dotTile<kType, 7>, dotTile<kType, 8>};
  for (int t = 0; t < count; t += kMaxTile) {
    kTiles[std::min(count - t, kMaxTile) - 1](n / kBlock32, group, static_cast<const uint8_t*>(activations) + t * stride,
                                              stride, out + t * out_stride, out_stride);
  }
}

}  // namespace

RepackedDotFn avx512Dot(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return dot<GgmlType::Q4_0>;
    case GgmlType::Q8_0: return dot<GgmlType::Q8_0>;
    default: return nullptr;
  }
}

}  // namespace pc::cpu::repacked

#else

namespace pc::cpu::repacked {
RepackedDotFn avx512Dot(GgmlType) { return nullptr; }
}  // namespace pc::cpu::repacked

#endif
