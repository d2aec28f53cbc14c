// AVX-512 (BW, VL, VNNI) K-quant kernels. Same results as the scalar reference in kquant_kernels.cc: the integer
// sums are exact, only the order of the float additions differs.
//
// Shape of a dot: a weight row of n/256 super-blocks against `count` Q8_K activation rows. Per super-block the
// weights are decoded once, 64 at a time ("chunks", one zmm of unsigned bytes in element order), and each chunk is
// multiplied into up to kMaxRows activation rows:
//   vpmaddubsw  u8 weight x s8 activation -> int16 sums of pairs           (at most 2*63*127: never saturates)
//   vpdpwssd    int16 pairs x the sub-block scale (in both int16 halves)  -> int32 lane k += scale * q[4k..4k+3].a
// The block's int32 sum then enters a float accumulator per row, together with the bsums term (Q4_K/Q5_K mins,
// Q6_K's -32 offset), and each row is reduced to a float once, at the end.
//
// What bounds speed: while 512-bit uops are in flight only ports 0 and 5 execute vector uops, so time is vector
// uops / 2. A Q4_K block costs about 44 with one row (decode ~30, the row ~14) and ~14 per further row, hence tiles
// of up to kMaxRows rows share one decode. Latency is not the limit (splitting the per-row chain changed nothing).
#include "kernels/cpu/kquant_kernels.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/row_tiles.h"

#if defined(__AVX512F__)

// GCC 12's AVX-512 intrinsics initialise their "undefined" vectors from themselves, which -W(maybe-)uninitialized
// reports at every inlined use (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu::kquant {
namespace {

constexpr int kMaxRows = 8;  // activation rows per pass: 2 float/int accumulators each, within 32 zmm registers
constexpr int kChunks = kBlockK / 64;

// A zmm whose low 256 bits are `low` and high 256 bits `high`, both broadcast (for per-half constants).
__m512i halves8(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(low)), _mm256_set1_epi8(static_cast<char>(high)), 1);
}
__m512i halves16(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(low)), _mm256_set1_epi16(static_cast<short>(high)), 1);
}

// The same 32 bytes in both halves of a zmm.
__m512i broadcast32(const uint8_t* bytes) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes)));
}

// ---- activations: bit-identical to quantizeRowQ8K ----

void quantizeRowQ8KAvx512(const float* x, void* out, int64_t n) {
  BlockQ8_K* blocks = static_cast<BlockQ8_K*>(out);
  for (int64_t b = 0; b < n / kBlockK; ++b, x += kBlockK) {
    BlockQ8_K& y = blocks[b];
    __m512 vmax = _mm512_setzero_ps();
    for (int g = 0; g < kBlockK / 16; ++g) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * g)));
    const float amax = _mm512_reduce_max_ps(vmax);
    if (amax == 0) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    // The reference keeps the first element of largest magnitude, sign included: it decides the sign of d and qs.
    int first = 0;
    for (int g = 0; g < kBlockK / 16; ++g) {
      const __mmask16 hit =
          _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * g)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) {
        first = 16 * g + __builtin_ctz(hit);
        break;
      }
    }
    const float iscale = -127.f / x[first];
    // Each 16 floats are one bsums group.
    for (int g = 0; g < kBlockK / 16; ++g) {
      const __m512 scaled = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), _mm512_set1_ps(iscale));
      const __m512i q = _mm512_min_epi32(
          _mm512_cvt_roundps_epi32(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y.qs + 16 * g), _mm512_cvtepi32_epi8(q));  // |q| <= 127: exact
      y.bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y.d = 1 / iscale;
  }
}

// ---- weight formats: decode a super-block chunk by chunk, and fold a block's int32 sum into a row accumulator ----

// Q4_K and Q5_K (kFifthBit). Chunk c is sub-blocks 2c (low 32 bytes) and 2c+1 (high 32 bytes).
template <class Block>
struct Q4KFormat {
  using Weights = Block;
  static constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5_K>;

  struct Header {
    __m512i scales;  // int16 lanes 0..7: scale[0..7]
    __m256i mins;    // int16: min[s] twice (lanes 2s, 2s+1), against bsums 2s, 2s+1
    __m512 d, dmin;
  };

  static Header header(const Block& block) {
    const __m128i bytes = unpackScalesMins(block.scales);
    // d and dmin are the block's first two halves: convert them as one pair, then spread each.
    int32_t d_dmin;
    std::memcpy(&d_dmin, &block, sizeof d_dmin);
    const __m512 pairs = _mm512_cvtph_ps(_mm256_set1_epi32(d_dmin));  // d, dmin, d, dmin, ...
    return {_mm512_castsi256_si512(_mm256_cvtepu8_epi16(bytes)), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(bytes, bytes)),
            _mm512_moveldup_ps(pairs), _mm512_movehdup_ps(pairs)};
  }

  // Elements 64c..64c+63 as bytes: qs[32c..32c+31] low nibbles, then the same bytes' high nibbles; Q5_K adds 16
  // where bit 2c (first 32) or 2c+1 (last 32) of qh[l] is set.
  static __m512i quants(const Block& block, int c) {
    const __m512i nibble_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
    __m512i q = _mm512_and_si512(_mm512_srlv_epi64(broadcast32(block.qs + 32 * c), nibble_shift),
                                 _mm512_set1_epi8(0x0f));
    if constexpr (kFifthBit) {
      const __mmask64 fifth = _mm512_test_epi8_mask(broadcast32(block.qh), halves8(1 << (2 * c), 2 << (2 * c)));
      q = _mm512_mask_add_epi8(q, fifth, q, _mm512_set1_epi8(16));
    }
    return q;
  }

  // Int16 lanes 0..15 take scale[2c], lanes 16..31 scale[2c+1].
  static __m512i scales(const Header& header, int c) {
    return _mm512_permutexvar_epi16(halves16(2 * c, 2 * c + 1), header.scales);
  }

  // acc += dy * (d * isum - dmin * sum_s min[s] * (bsums[2s] + bsums[2s+1]))
  static __m512 accumulate(const Header& header, __m512i isum, const BlockQ8_K& a, __m512 acc) {
    const __m256i min_terms =
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)), header.mins);
    __m512 block = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), header.d);
    block = _mm512_mask3_fnmadd_ps(_mm512_castps256_ps512(_mm256_cvtepi32_ps(min_terms)), header.dmin, block, 0x00ff);
    return _mm512_fmadd_ps(block, _mm512_set1_ps(a.d), acc);
  }
};

// Q6_K. Chunk c = 2h + i covers elements 128h + 64i .. +63: the low (i = 0) or high (i = 1) nibbles of
// ql[64h..64h+63], topped by bits 4i, 4i+1 (first 32) and 4i+2, 4i+3 (last 32) of qh[32h + l].
struct Q6KFormat {
  using Weights = BlockQ6_K;

  struct Header {
    __m512i scales;  // int16 lanes 0..15: the signed scales
    __m512 d;
  };

  static Header header(const BlockQ6_K& block) {
    const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
    return {_mm512_castsi256_si512(_mm256_cvtepi8_epi16(scales)),
            _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(block.d)))};
  }

  static __m512i quants(const BlockQ6_K& block, int c) {
    const int h = c / 2, i = c % 2;
    const __m512i ql = _mm512_loadu_si512(block.ql + 64 * h);
    const __m512i low = _mm512_and_si512(i ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0f));
    // Rotate each half's two qh bits to bits 4..5 of their byte (a 64-bit rotate keeps them in their byte).
    const __m512i rotate = i ? _mm512_set_epi64(62, 62, 62, 62, 0, 0, 0, 0) : _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4);
    const __m512i top = _mm512_and_si512(_mm512_rolv_epi64(broadcast32(block.qh + 32 * h), rotate),
                                         _mm512_set1_epi8(0x30));
    return _mm512_or_si512(low, top);
  }

  // Int16 lane k of chunk c belongs to sub-block 4c + k/8.
  static __m512i scales(const Header& header, int c) {
    const int64_t lanes = 0x0001000100010001;
    const __m512i sub_block = _mm512_set_epi64(3 * lanes, 3 * lanes, 2 * lanes, 2 * lanes, lanes, lanes, 0, 0);
    return _mm512_permutexvar_epi16(_mm512_add_epi16(sub_block, _mm512_set1_epi16(static_cast<short>(4 * c))),
                                    header.scales);
  }

  // The quants were used without their -32: subtract 32 * sum_s scale[s] * bsums[s], then acc += dy * d * isum.
  static __m512 accumulate(const Header& header, __m512i isum, const BlockQ8_K& a, __m512 acc) {
    const __m256i offset = _mm256_slli_epi32(
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)),
                          _mm512_castsi512_si256(header.scales)),
        5);
    isum = _mm512_mask_sub_epi32(isum, 0x00ff, isum, _mm512_castsi256_si512(offset));
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), header.d), _mm512_set1_ps(a.d), acc);
  }
};

// ---- the one dot mechanism: R activation rows against one weight row ----

template <class Format, int R>
void dotTile(int64_t blocks, const typename Format::Weights* w, const uint8_t* activations, size_t stride,
             float* out) {
  __m512 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    if constexpr (R == 1) prefetchAhead<sizeof(w[b])>(w + b);  // decode: prefetch.h
    const auto header = Format::header(w[b]);
    const BlockQ8_K* a[R];
    __m512i isum[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      a[r] = reinterpret_cast<const BlockQ8_K*>(activations + r * stride) + b;
      isum[r] = _mm512_setzero_si512();
    }
#pragma GCC unroll 4
    for (int c = 0; c < kChunks; ++c) {
      const __m512i q = Format::quants(w[b], c);
      const __m512i scales = Format::scales(header, c);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i pairs = _mm512_maddubs_epi16(q, _mm512_loadu_si512(a[r]->qs + 64 * c));
        isum[r] = _mm512_dpwssd_epi32(isum[r], pairs, scales);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = Format::accumulate(header, isum[r], *a[r], acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// The shared multi-row driver (row_tiles.h) calls Tiles<Format>::tile<kRows>; this adapter stays in the file,
// so each ISA's instantiation keeps internal linkage.
template <class Format>
struct Tiles {
  template <int kRows>
  static void tile(int64_t n, const void* weight_row, const uint8_t* rows, size_t stride, float* out) {
    dotTile<Format, kRows>(n / kBlockK, static_cast<const typename Format::Weights*>(weight_row), rows, stride, out);
  }
};

template <class Format>
void dotRows(int64_t n, const void* weight_row, const void* activations, size_t stride, int count, float* out) {
  dotRowsInTiles<Tiles<Format>, kMaxRows>(n, weight_row, activations, stride, count, out);
}

constexpr WeightKernels kQ4K = {GgmlType::Q4_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8KAvx512,
                                dotRows<Q4KFormat<BlockQ4_K>>, dequantizeRowQ4K};
constexpr WeightKernels kQ5K = {GgmlType::Q5_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8KAvx512,
                                dotRows<Q4KFormat<BlockQ5_K>>, dequantizeRowQ5K};
constexpr WeightKernels kQ6K = {GgmlType::Q6_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8KAvx512,
                                dotRows<Q6KFormat>, dequantizeRowQ6K};

}  // namespace

const WeightKernels* avx512Kernels(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return &kQ4K;
    case GgmlType::Q5_K: return &kQ5K;
    case GgmlType::Q6_K: return &kQ6K;
    default: return nullptr;
  }
}

}  // namespace pc::cpu::kquant

#else  // no AVX-512 in this build: the lookup falls back to AVX2 or the reference

namespace pc::cpu::kquant {
const WeightKernels* avx512Kernels(GgmlType) { return nullptr; }
}  // namespace pc::cpu::kquant

#endif
