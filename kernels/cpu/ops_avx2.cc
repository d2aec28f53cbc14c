// AVX2 + FMA + F16C versions of the ops kernels: the templates of ops_simd.h over 8-float vectors.
#include "kernels/cpu/ops_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace pc::cpu {
namespace {

struct Avx2 {
  using F = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kAccumulators = 8;  // of 16 ymm registers, leaving room for operands

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F x) { _mm256_storeu_ps(p, x); }
  static __m256i firstLanes(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F loadPartial(const float* p, int count, float fill) {
    const __m256i lanes = firstLanes(count);
    return _mm256_blendv_ps(set1(fill), _mm256_maskload_ps(p, lanes), _mm256_castsi256_ps(lanes));
  }
  static void storePartial(float* p, F x, int count) { _mm256_maskstore_ps(p, firstLanes(count), x); }
  static F loadF16(const f16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F roundF16(F x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F roundNearest(F x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F scale2(F p, F n) {  // 2^n built in the exponent field
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  static F selectLess(F a, F b, F if_less, F otherwise) {
    return _mm256_blendv_ps(otherwise, if_less, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
  }
  static float reduceAdd(F x) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
  }
  static float reduceMax(F x) {
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    return _mm_cvtss_f32(_mm_max_ss(r, _mm_movehdup_ps(r)));
  }

  // a (8 x 8) transposed in place: three levels of shuffles, within 128-bit lanes first, then across them.
  static void transpose(F (&a)[8]) {
    F u[8], w[8];
    #pragma GCC unroll 8
    for (int i = 0; i < 4; ++i) {  // rows 2i, 2i+1 interleaved: elements 4l, 4l+1 | 4l+2, 4l+3 of each 128-bit lane l
      u[2 * i] = _mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]);
      u[2 * i + 1] = _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    #pragma GCC unroll 8
    for (int m = 0; m < 2; ++m) {  // w[2f + m], lane l: element 4l + f of rows 4m .. 4m+3
      const auto pd = [](F x) { return _mm256_castps_pd(x); };
      w[m] = _mm256_castpd_ps(_mm256_unpacklo_pd(pd(u[4 * m]), pd(u[4 * m + 2])));
      w[2 + m] = _mm256_castpd_ps(_mm256_unpackhi_pd(pd(u[4 * m]), pd(u[4 * m + 2])));
      w[4 + m] = _mm256_castpd_ps(_mm256_unpacklo_pd(pd(u[4 * m + 1]), pd(u[4 * m + 3])));
      w[6 + m] = _mm256_castpd_ps(_mm256_unpackhi_pd(pd(u[4 * m + 1]), pd(u[4 * m + 3])));
    }
    #pragma GCC unroll 8
    for (int f = 0; f < 4; ++f) {  // a[4l + f] = lane l of w[2f], w[2f + 1]
      a[f] = _mm256_permute2f128_ps(w[2 * f], w[2 * f + 1], 0x20);
      a[4 + f] = _mm256_permute2f128_ps(w[2 * f], w[2 * f + 1], 0x31);
    }
  }

  // r[i] = sum of a[i]'s lanes: three levels of pairwise shuffles and adds, halving the vectors each time.
  static F sumLanes(const F (&a)[8]) {
    F b[4], c[2];
    #pragma GCC unroll 16
    for (int i = 0; i < 4; ++i)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] of a[2i], a[2i+1]
      b[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    #pragma GCC unroll 16
    for (int i = 0; i < 2; ++i)  // per 128-bit lane: the 4-lane sums of a[4i .. 4i+3]
      c[i] = _mm256_add_ps(_mm256_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm256_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_add_ps(_mm256_permute2f128_ps(c[0], c[1], 0x20), _mm256_permute2f128_ps(c[0], c[1], 0x31));
  }
};

}  // namespace
}  // namespace pc::cpu

#include "kernels/cpu/ops_simd.h"

namespace pc::cpu {

const OpsKernels* avx2OpsKernels() {
  static constexpr OpsKernels kKernels = simdOpsKernels<Avx2>();
  return &kKernels;
}

}  // namespace pc::cpu

#else

namespace pc::cpu {
const OpsKernels* avx2OpsKernels() { return nullptr; }
}  // namespace pc::cpu

#endif
