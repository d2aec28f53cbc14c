// AVX-512 kernels for float weights: float_simd.h on 16-float vectors, with 32 registers for tiles of 8 rows.
#include "kernels/cpu/float_kernels.h"

#if defined(__AVX512F__)
// GCC 12's _mm512_undefined_*() self-initialize (`__m512i __Y = __Y;`), which -W(maybe-)uninitialized reports
// wherever an intrinsic using them is inlined (most AVX-512 ones with a mask form).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/float_simd.h"

namespace pc::cpu::floating {
namespace {

struct Avx512Vec {
  using Vec = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kMaxRows = 8;
  struct Pair {
    Vec v[2];
  };

  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static float horizontalSum(Vec v) { return _mm512_reduce_add_ps(v); }

  template <GgmlType kType>
  static Pair load(const Storage<kType>* p) {
    if constexpr (kType == GgmlType::F32) {
      return {_mm512_loadu_ps(p), _mm512_loadu_ps(p + 16)};
    } else if constexpr (kType == GgmlType::F16) {
      return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
              _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)))};
    } else {
      // A bf16 is the top half of an f32: in each 32-bit lane, shift the even element up and mask the odd one.
      const __m512i v = _mm512_loadu_si512(p);
      return {_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)),
              _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))))};
    }
  }

  template <GgmlType kType>
  static void narrow(const float* x, Storage<kType>* out) {
    const __m512 v = _mm512_loadu_ps(x);
    if constexpr (kType == GgmlType::F16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    } else {
      // f32ToBf16: add 0x7FFF plus the kept lowest bit (ties to even), keep the top half; NaNs become quiet NaNs.
      const __m512i bits = _mm512_castps_si512(v);
      const __m512i top = _mm512_srli_epi32(bits, 16);
      const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(top, _mm512_set1_epi32(1)));
      const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, bias), 16);
      const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)),
                                                    _mm512_set1_epi32(0x7F800000));
      const __m512i halves = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(top, _mm512_set1_epi32(64)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(halves));
    }
  }
};

}  // namespace

const WeightKernels* avx512Kernels(GgmlType type) { return simdKernels<Avx512Vec>(type); }

}  // namespace pc::cpu::floating

#else

namespace pc::cpu::floating {
const WeightKernels* avx512Kernels(GgmlType) { return nullptr; }
}  // namespace pc::cpu::floating

#endif
