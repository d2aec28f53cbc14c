// AVX2 (+FMA, F16C) kernels for float weights: float_simd.h on 8-float vectors.
#include "kernels/cpu/float_kernels.h"

#if defined(__AVX2__)
#include "kernels/cpu/float_simd.h"

namespace pc::cpu::floating {
namespace {

struct Avx2Vec {
  using Vec = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kMaxRows = 4;  // 16 ymm registers: 2 accumulators per row plus the widened chunks
  struct Pair {
    Vec v[2];
  };

  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static float horizontalSum(Vec v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    return _mm_cvtss_f32(_mm_add_ss(sum, _mm_movehdup_ps(sum)));
  }

  template <GgmlType kType>
  static Pair load(const Storage<kType>* p) {
    if constexpr (kType == GgmlType::F32) {
      return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    } else if constexpr (kType == GgmlType::F16) {
      return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
    } else {
      // A bf16 is the top half of an f32: in each 32-bit lane, shift the even element up and mask the odd one.
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      return {_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)),
              _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))))};
    }
  }

  template <GgmlType kType>
  static void narrow(const float* x, Storage<kType>* out) {
    const __m256 v = _mm256_loadu_ps(x);
    if constexpr (kType == GgmlType::F16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    } else {
      // f32ToBf16: add 0x7FFF plus the kept lowest bit (ties to even), keep the top half; NaNs become quiet NaNs.
      const __m256i bits = _mm256_castps_si256(v);
      const __m256i top = _mm256_srli_epi32(bits, 16);
      const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), _mm256_and_si256(top, _mm256_set1_epi32(1)));
      const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, bias), 16);
      const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF)),
                                             _mm256_set1_epi32(0x7F800000));
      const __m256i halves = _mm256_blendv_epi8(rounded, _mm256_or_si256(top, _mm256_set1_epi32(64)), nan);
      // packus works within 128-bit halves: gather the two 4-element results into the low half.
      const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed));
    }
  }
};

}  // namespace

const WeightKernels* avx2Kernels(GgmlType type) { return simdKernels<Avx2Vec>(type); }

}  // namespace pc::cpu::floating

#else

namespace pc::cpu::floating {
const WeightKernels* avx2Kernels(GgmlType) { return nullptr; }
}  // namespace pc::cpu::floating

#endif
