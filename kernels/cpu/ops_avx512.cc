// AVX-512 (F/BW/VL/DQ) versions of the ops kernels: the templates of ops_simd.h over 16-float vectors.
#include "kernels/cpu/ops_kernels.h"

#if defined(__AVX512F__)
// GCC 12 reports its own _mm512_undefined_ps() (inside many intrinsics) as uninitialized once inlined (GCC bug
// 105593): silence that false positive for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace pc::cpu {
namespace {

struct Avx512 {
  using F = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kAccumulators = 16;  // of 32 zmm registers, leaving room for operands

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F x) { _mm512_storeu_ps(p, x); }
  static __mmask16 firstLanes(int count) { return static_cast<__mmask16>((1u << count) - 1); }
  static F loadPartial(const float* p, int count, float fill) {
    return _mm512_mask_loadu_ps(set1(fill), firstLanes(count), p);
  }
  static void storePartial(float* p, F x, int count) { _mm512_mask_storeu_ps(p, firstLanes(count), x); }
  static F loadF16(const f16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F roundF16(F x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F roundNearest(F x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F scale2(F p, F n) { return _mm512_scalef_ps(p, n); }
  static F selectLess(F a, F b, F if_less, F otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, if_less);
  }
  static float reduceAdd(F x) { return _mm512_reduce_add_ps(x); }
  static float reduceMax(F x) { return _mm512_reduce_max_ps(x); }

  // a (16 x 16) transposed in place: four levels of shuffles, within 128-bit lanes first, then across them.
  static void transpose(F (&a)[16]) {
    F u[16], w[16];
    #pragma GCC unroll 16
    for (int i = 0; i < 8; ++i) {  // rows 2i, 2i+1 interleaved: elements 4l, 4l+1 | 4l+2, 4l+3 of each 128-bit lane l
      u[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
      u[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    #pragma GCC unroll 16
    for (int m = 0; m < 4; ++m) {  // w[4f + m], lane l: element 4l + f of rows 4m .. 4m+3
      const auto pd = [](F x) { return _mm512_castps_pd(x); };
      w[m] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(u[4 * m]), pd(u[4 * m + 2])));
      w[4 + m] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(u[4 * m]), pd(u[4 * m + 2])));
      w[8 + m] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(u[4 * m + 1]), pd(u[4 * m + 3])));
      w[12 + m] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(u[4 * m + 1]), pd(u[4 * m + 3])));
    }
    #pragma GCC unroll 16
    for (int f = 0; f < 4; ++f) {  // a 4 x 4 transpose of 128-bit lanes among w[4f .. 4f+3]: a[4l + f] = lane l of each
      const F* x = w + 4 * f;
      const F even01 = _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0));
      const F odd01 = _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1));
      const F even23 = _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0));
      const F odd23 = _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1));
      a[f] = _mm512_shuffle_f32x4(even01, even23, _MM_SHUFFLE(2, 0, 2, 0));
      a[4 + f] = _mm512_shuffle_f32x4(odd01, odd23, _MM_SHUFFLE(2, 0, 2, 0));
      a[8 + f] = _mm512_shuffle_f32x4(even01, even23, _MM_SHUFFLE(3, 1, 3, 1));
      a[12 + f] = _mm512_shuffle_f32x4(odd01, odd23, _MM_SHUFFLE(3, 1, 3, 1));
    }
  }

  // r[i] = sum of a[i]'s lanes: four levels of pairwise shuffles and adds, halving the vectors each time.
  static F sumLanes(const F (&a)[16]) {
    F b[8], c[4], d[2];
    #pragma GCC unroll 16
    for (int i = 0; i < 8; ++i)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] of a[2i], a[2i+1]
      b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    #pragma GCC unroll 16
    for (int i = 0; i < 4; ++i)  // per 128-bit lane: the 4-lane sums of a[4i .. 4i+3]
      c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    #pragma GCC unroll 16
    for (int i = 0; i < 2; ++i)  // 128-bit lanes added in pairs
      d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
};

}  // namespace
}  // namespace pc::cpu

#include "kernels/cpu/ops_simd.h"

namespace pc::cpu {

const OpsKernels* avx512OpsKernels() {
  static constexpr OpsKernels kKernels = simdOpsKernels<Avx512>();
  return &kKernels;
}

}  // namespace pc::cpu

#else

namespace pc::cpu {
const OpsKernels* avx512OpsKernels() { return nullptr; }
}  // namespace pc::cpu

#endif
