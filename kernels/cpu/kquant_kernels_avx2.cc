// AVX2 K-quant kernels: the AVX-512 file's mechanism (see its header comment) on 256-bit vectors and without VNNI.
// A chunk is 32 weights (one ymm); per chunk and activation row:
//   vpmaddubsw  u8 weight x s8 activation -> int16 sums of pairs   (at most 2*63*127: never saturates)
//   vpmaddwd    int16 pairs x the sub-block scale                -> int32, added to the block sum
// A pass takes up to kMaxRows = 8 activation rows, more state than 16 ymm registers hold: the compiler keeps some of
// it on the stack (L1), which costs less than decoding the block again (8 rows per pass measured ~15% faster than 4).
#include "kernels/cpu/kquant_kernels.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/row_tiles.h"

#if defined(__AVX2__)

#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu::kquant {
namespace {

constexpr int kMaxRows = 8;
constexpr int kChunks = kBlockK / 32;

float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

int sum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

float max8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// ---- activations: bit-identical to quantizeRowQ8K ----

void quantizeRowQ8KAvx2(const float* x, void* out, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  BlockQ8_K* blocks = static_cast<BlockQ8_K*>(out);
  for (int64_t b = 0; b < n / kBlockK; ++b, x += kBlockK) {
    BlockQ8_K& y = blocks[b];
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < kBlockK; i += 8) vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    const float amax = max8(vmax);
    if (amax == 0) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    // The reference keeps the first element of largest magnitude, sign included: it decides the sign of d and qs.
    int first = 0;
    for (int i = 0; i < kBlockK; i += 8) {
      const __m256 abs = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs, _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hit) {
        first = i + __builtin_ctz(hit);
        break;
      }
    }
    const float iscale = -127.f / x[first];
    // Each 16 floats (two ymm) are one bsums group.
    for (int g = 0; g < kBlockK / 16; ++g) {
      __m256i q[2];
      for (int h = 0; h < 2; ++h) {
        const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8 * h), _mm256_set1_ps(iscale));
        const __m256 rounded = _mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[h] = _mm256_min_epi32(_mm256_cvtps_epi32(rounded), _mm256_set1_epi32(127));
      }
      y.bsums[g] = static_cast<int16_t>(sum8(_mm256_add_epi32(q[0], q[1])));
      // packs works within 128-bit lanes: int16 order is q0[0..3] q1[0..3] | q0[4..7] q1[4..7]; regroup the
      // 64-bit quarters before narrowing to bytes.
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), _MM_SHUFFLE(3, 1, 2, 0));
      const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y.qs + 16 * g), bytes);
    }
    y.d = 1 / iscale;
  }
}

// ---- weight formats: decode a super-block chunk by chunk, and fold a block's int32 sum into a row accumulator ----

// Q4_K and Q5_K: chunk c is sub-block c, the low (c even) or high (c odd) nibbles of qs[32(c/2)..], plus for Q5_K
// bit c of qh[l] as 16.
template <class Block>
struct Q4KFormat {
  using Weights = Block;
  static constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5_K>;

  struct Header {
    __m256i scales;  // int16 scale[0..7], in both 128-bit lanes
    __m256i mins;    // int16: min[s] twice (lanes 2s, 2s+1), against bsums 2s, 2s+1
    __m256 d, dmin;
  };

  static Header header(const Block& block) {
    const __m128i bytes = unpackScalesMins(block.scales);
    // d and dmin are the block's first two halves: convert them as one pair, then spread each.
    int32_t d_dmin;
    std::memcpy(&d_dmin, &block, sizeof d_dmin);
    const __m256 pairs = _mm256_cvtph_ps(_mm_set1_epi32(d_dmin));  // d, dmin, d, dmin, ...
    const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(bytes));
    return {scales, _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(bytes, bytes)), _mm256_moveldup_ps(pairs),
            _mm256_movehdup_ps(pairs)};
  }

  static __m256i quants(const Block& block, int c) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs + 32 * (c / 2)));
    __m256i q = _mm256_and_si256(c % 2 ? _mm256_srli_epi16(bytes, 4) : bytes, _mm256_set1_epi8(0x0f));
    if constexpr (kFifthBit) {
      // Move bit c of each qh byte to bit 4 (a 16-bit shift by at most 4 keeps it inside its byte).
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qh));
      const __m256i moved = c < 4 ? _mm256_slli_epi16(qh, 4 - c) : _mm256_srli_epi16(qh, c - 4);
      q = _mm256_or_si256(q, _mm256_and_si256(moved, _mm256_set1_epi8(0x10)));
    }
    return q;
  }

  // Every int16 lane takes scale[c] (bytes 2c, 2c+1 of each 128-bit lane).
  static __m256i scales(const Header& header, int c) {
    return _mm256_shuffle_epi8(header.scales, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * c)));
  }

  // acc += dy * (d * isum - dmin * sum_s min[s] * (bsums[2s] + bsums[2s+1]))
  static __m256 accumulate(const Header& header, __m256i isum, const BlockQ8_K& a, __m256 acc) {
    const __m256i min_terms =
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)), header.mins);
    const __m256 block =
        _mm256_fnmadd_ps(_mm256_cvtepi32_ps(min_terms), header.dmin, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), header.d));
    return _mm256_fmadd_ps(block, _mm256_set1_ps(a.d), acc);
  }
};

// Q6_K: chunk c = 4h + i covers elements 128h + 32i .. +31 (sub-blocks 2c, 2c+1): the low (i < 2) or high nibbles
// of ql[64h + 32(i%2)..], topped by bits 2i, 2i+1 of qh[32h + l].
struct Q6KFormat {
  using Weights = BlockQ6_K;

  struct Header {
    __m128i scales;    // int8
    __m256i scales16;  // the same, int16
    __m256 d;
  };

  static Header header(const BlockQ6_K& block) {
    const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
    return {scales, _mm256_cvtepi8_epi16(scales), _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(block.d)))};
  }

  static __m256i quants(const BlockQ6_K& block, int c) {
    const int h = c / 4, i = c % 4;
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.ql + 64 * h + 32 * (i % 2)));
    const __m256i low = _mm256_and_si256(i < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0f));
    // Move bits 2i, 2i+1 of each qh byte to bits 4, 5 (16-bit shifts by at most 4 keep them inside their byte).
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qh + 32 * h));
    const __m256i moved = i < 2 ? _mm256_slli_epi16(qh, 4 - 2 * i) : _mm256_srli_epi16(qh, 2 * i - 4);
    return _mm256_or_si256(low, _mm256_and_si256(moved, _mm256_set1_epi8(0x30)));
  }

  // Int16 lanes 0..7 take scale[2c], lanes 8..15 scale[2c+1].
  static __m256i scales(const Header& header, int c) {
    const __m128i pick = _mm_add_epi8(_mm_set_epi64x(0x0101010101010101, 0), _mm_set1_epi8(static_cast<char>(2 * c)));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(header.scales, pick));
  }

  // The quants were used without their -32: subtract 32 * sum_s scale[s] * bsums[s], then acc += dy * d * isum.
  static __m256 accumulate(const Header& header, __m256i isum, const BlockQ8_K& a, __m256 acc) {
    const __m256i offset = _mm256_slli_epi32(
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)), header.scales16), 5);
    const __m256 block = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum, offset)), header.d);
    return _mm256_fmadd_ps(block, _mm256_set1_ps(a.d), acc);
  }
};

// ---- the one dot mechanism: R activation rows against one weight row ----

template <class Format, int R>
void dotTile(int64_t blocks, const typename Format::Weights* w, const uint8_t* activations, size_t stride,
             float* out) {
  __m256 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    if constexpr (R == 1) prefetchAhead<sizeof(w[b])>(w + b);  // decode: prefetch.h
    const auto header = Format::header(w[b]);
    const BlockQ8_K* a[R];
    __m256i isum[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      a[r] = reinterpret_cast<const BlockQ8_K*>(activations + r * stride) + b;
      isum[r] = _mm256_setzero_si256();
    }
#pragma GCC unroll 8
    for (int c = 0; c < kChunks; ++c) {
      const __m256i q = Format::quants(w[b], c);
      const __m256i scales = Format::scales(header, c);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256i a8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[r]->qs + 32 * c));
        isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q, a8), scales));
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = Format::accumulate(header, isum[r], *a[r], acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = sum8(acc[r]);
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

constexpr WeightKernels kQ4K = {GgmlType::Q4_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8KAvx2,
                                dotRows<Q4KFormat<BlockQ4_K>>, dequantizeRowQ4K};
constexpr WeightKernels kQ5K = {GgmlType::Q5_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8KAvx2,
                                dotRows<Q4KFormat<BlockQ5_K>>, dequantizeRowQ5K};
constexpr WeightKernels kQ6K = {GgmlType::Q6_K, GgmlType::Q8_K, kBlockK, quantizeRowQ8KAvx2,
                                dotRows<Q6KFormat>, dequantizeRowQ6K};

}  // namespace

const WeightKernels* avx2Kernels(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return &kQ4K;
    case GgmlType::Q5_K: return &kQ5K;
    case GgmlType::Q6_K: return &kQ6K;
    default: return nullptr;
  }
}

}  // namespace pc::cpu::kquant

#else  // no AVX2 in this build: the lookup falls back to the reference

namespace pc::cpu::kquant {
const WeightKernels* avx2Kernels(GgmlType) { return nullptr; }
}  // namespace pc::cpu::kquant

#endif
