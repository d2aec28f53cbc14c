// SIMD kernels for the 32-weight block formats, written once and compiled twice: block32_kernels_avx2.cc and
// block32_kernels_avx512.cc each include this with their own `Ops`, the instructions that differ between AVX2 and
// AVX-512 VNNI. Everything here sits in an unnamed namespace on purpose: each including file compiles it for its own
// ISA, and the linker must never merge the two copies (an AVX-512 copy would fault on an AVX2 machine).
//
// A vector holds kBlocks whole blocks: 32 bytes, then 8 int32 or float lanes, per block (AVX2: 1 block per ymm;
// AVX-512: 2 per zmm, which halves the instructions per block). Ops provides:
//   Int, Float, kBlocks        the vector types
//   kMaxRows                   activation rows per tile; their accumulators must fit in the vector registers
//   bytes(p, stride, valid)    32 bytes from p, p + stride, ... for `valid` <= kBlocks blocks, zeros after them
//   nibbles(qs, stride, valid) the 4-bit weights of each block as bytes, in element order (see unsignedWeights)
//   withFifthBits(q, qh, stride, valid)   q with bit j of each block's 32-bit qh added as 16 to its byte j
//   flipTopBits(q)             q ^ 0x80 in every byte
//   prepareWeights<kOffset, kRows>(q)     once per vector of weights, for a tile of kRows activation rows: q holds
//                              unsigned bytes meaning q - kOffset
//   dot(weights, a)            per activation row: 8 int32 lanes per block summing to sum_j (q_j - kOffset) * a_j
//   blockScales(scales, b)     scales[b + i] (i < kBlocks) spread over block i's 8 lanes
//   toFloat, fma, add, zero, horizontalSum
//   loadScales(p, stride, k, first, second)
//                              the two f16 at the start of each of k blocks `stride` bytes apart, as Scales16:
//                              first = d, second = m (Q4_1/Q5_1) or s (Q8_1); lanes k..15 zero; second may be null
#pragma once

#if !defined(__AVX2__)
#error "block32_simd.h is for files compiled with AVX2 or better"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/block32_kernels.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/row_tiles.h"

namespace pc::cpu::block32 {
namespace {

constexpr int kScaleGroup = 16;  // blocks whose f16 scales are converted together (one zmm of floats)

// A group's 16 scales, as one value (GCC vector: one zmm, or two ymm on AVX2) for the per-group arithmetic, and as
// floats for the per-block FMAs to read by broadcast.
typedef float Floats16 __attribute__((vector_size(kScaleGroup * sizeof(float))));
union Scales16 {
  Floats16 v;
  float at[kScaleGroup];
};

// ---- activation quantization: ggml's x86 quantize_row_q8_0 / q8_1 (see block32_kernels.h) ----

template <class Activation>
void quantizeRow(const float* x, void* out, int64_t n) {
  Activation* blocks = static_cast<Activation*>(out);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kBlock32; ++b, x += kBlock32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[i]));
    }
    __m128 max4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
    const float max = _mm_cvtss_f32(_mm_max_ss(max4, _mm_movehdup_ps(max4)));
    const float d = max / 127.0f;
    const __m256 id = _mm256_set1_ps(max != 0.0f ? 127.0f / max : 0.0f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
      const __m256 scaled = _mm256_mul_ps(v[i], id);
      q[i] = _mm256_cvtps_epi32(_mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // packs works within 128-bit halves, leaving the 4-byte groups in order 0 2 4 6 1 3 5 7: permute them back.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(blocks[b].qs),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    blocks[b].d = f32ToF16(d);
    if constexpr (std::is_same_v<Activation, BlockQ8_1>) {
      const __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
      sum = _mm_add_epi32(sum, _mm_unpackhi_epi64(sum, sum));
      sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(2, 3, 0, 1)));
      blocks[b].s = f32ToF16(d * static_cast<float>(_mm_cvtsi128_si32(sum)));
    }
  }
}

// ---- weight decoding: once per weight block, reused for every activation row of a tile ----

// x86 multiplies bytes only as unsigned x signed (maddubs, dpbusd), the activation being the signed side, so every
// format decodes to unsigned bytes q meaning q - offset: the "_0" formats' own offset, none for "_1", and for Q8_0
// the signed byte with its top bit flipped (q + 128).
template <class Block>
constexpr int kUnsignedOffset = Format<Block>::kBits == 8 ? 128 : Format<Block>::kOffset;

// The weights of blocks w[0..valid) as unsigned bytes meaning q - kUnsignedOffset<Block>. In the packed formats
// byte j holds weight j (low nibble) and weight j + 16 (high nibble).
template <class Ops, class Block>
typename Ops::Int unsignedWeights(const Block* w, int valid) {
  using F = Format<Block>;
  if constexpr (F::kBits == 8) {
    return Ops::flipTopBits(Ops::bytes(w->qs, sizeof(Block), valid));
  } else {
    typename Ops::Int q = Ops::nibbles(w->qs, sizeof(Block), valid);
    if constexpr (F::kBits == 5) q = Ops::withFifthBits(q, w->qh, sizeof(Block), valid);
    return q;
  }
}

// ---- one weight row against a tile of activation rows ----

// out[r] = w (n,) . a[r] (n,) for r < kRows, a vector of kBlocks blocks at a time: the weights are decoded once, then
// per row acc += float(int32 partial sums) * (dx * dy), 8 lanes per block, no horizontal sum until the row ends.
// The f16 scales of 16 blocks are converted at once into small arrays the FMAs read by broadcast.
template <class Ops, class Block>
struct RowKernel {
  using Activation = typename Format<Block>::Activation;
  using Float = typename Ops::Float;

  template <int kRows>
  static void tile(int64_t n, const void* weight_row, const uint8_t* activations, size_t stride, float* out) {
    constexpr int kBlocks = Ops::kBlocks;
    // FMA latency is 4 cycles: a row needs several independent accumulators unless the tile's rows provide them.
    constexpr int kChains = kRows >= 4 ? 1 : 4 / kRows;
    const Block* w = static_cast<const Block*>(weight_row);
    const int64_t blocks = n / kBlock32;
    const Activation* a[kRows];
    Float acc[kRows][kChains];
    for (int r = 0; r < kRows; ++r) {
      a[r] = reinterpret_cast<const Activation*>(activations + r * stride);
      for (int c = 0; c < kChains; ++c) acc[r][c] = Ops::zero();
    }
    Floats16 min_terms[kRows] = {};  // m * s per block ("_1" formats)

    for (int64_t g = 0; g < blocks; g += kScaleGroup) {
      const int k = static_cast<int>(std::min<int64_t>(kScaleGroup, blocks - g));
      if constexpr (kRows == 1) prefetchAhead<kScaleGroup * sizeof(Block)>(w + g);  // decode: prefetch.h
      Scales16 wd, wm, scale[kRows];
      Ops::loadScales(w + g, sizeof(Block), k, wd, kHasMin<Block> ? &wm : nullptr);
      for (int r = 0; r < kRows; ++r) {
        Scales16 ad, as;
        Ops::loadScales(a[r] + g, sizeof(Activation), k, ad, kHasMin<Block> ? &as : nullptr);
        scale[r].v = wd.v * ad.v;
        if constexpr (kHasMin<Block>) min_terms[r] += wm.v * as.v;
      }
      // Blocks g + b .. g + b + valid - 1. `chain` is a std::integral_constant, so the accumulators stay registers.
      const auto step = [&](int b, int valid, auto chain) {
        const auto weights =
            Ops::template prepareWeights<kUnsignedOffset<Block>, kRows>(unsignedWeights<Ops>(w + g + b, valid));
        for (int r = 0; r < kRows; ++r) {
          const auto dot = Ops::dot(weights, Ops::bytes(a[r][g + b].qs, sizeof(Activation), valid));
          acc[r][chain] = Ops::fma(Ops::toFloat(dot), Ops::blockScales(scale[r].at, b), acc[r][chain]);
        }
      };
      int b = 0;
      for (; b + kChains * kBlocks <= k; b += kChains * kBlocks) {
        forEachIndex<kChains>([&](auto c) { step(b + c * kBlocks, kBlocks, c); });
      }
      for (; b < k; b += kBlocks) step(b, std::min(kBlocks, k - b), std::integral_constant<int, 0>{});
    }

    for (int r = 0; r < kRows; ++r) {
      for (int c = 1; c < kChains; ++c) acc[r][0] = Ops::add(acc[r][0], acc[r][c]);
      float sum = Ops::horizontalSum(acc[r][0]);
      if constexpr (kHasMin<Block>) {
        for (int i = 0; i < kScaleGroup; ++i) sum += min_terms[r][i];
      }
      out[r] = sum;
    }
  }
};

template <class Ops, class Block>
const WeightKernels* kernelsFor() {
  using Activation = typename Format<Block>::Activation;
  static const WeightKernels kernels{Format<Block>::kType, kActivationType<Activation>, kBlock32,
                                     quantizeRow<Activation>, dotRowsInTiles<RowKernel<Ops, Block>, Ops::kMaxRows>,
                                     scalarKernels(Format<Block>::kType)->dequantize_row};
  return &kernels;
}

template <class Ops>
const WeightKernels* simdKernels(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return kernelsFor<Ops, BlockQ4_0>();
    case GgmlType::Q4_1: return kernelsFor<Ops, BlockQ4_1>();
    case GgmlType::Q5_0: return kernelsFor<Ops, BlockQ5_0>();
    case GgmlType::Q5_1: return kernelsFor<Ops, BlockQ5_1>();
    case GgmlType::Q8_0: return kernelsFor<Ops, BlockQ8_0>();
    default: return nullptr;
  }
}

}  // namespace
}  // namespace pc::cpu::block32
