// AVX2 (+FMA, F16C) kernels for the 32-weight block formats: block32_simd.h with one block per ymm and AVX2's byte
// products (maddubs + madd).
#include "kernels/cpu/block32_kernels.h"

#if defined(__AVX2__)
#include "kernels/cpu/block32_simd.h"

namespace pc::cpu::block32 {
namespace {

struct Avx2Ops {
  using Int = __m256i;
  using Float = __m256;
  static constexpr int kBlocks = 1;
  static constexpr int kMaxRows = 4;  // 16 ymm registers: 4 accumulators, the decoded block, temporaries

  static Int bytes(const void* p, size_t, int) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

  // The 16 packed bytes broadcast to both halves, the upper half shifted right by 4: a broadcast load (no shuffle
  // port) and one shift.
  static Int nibbles(const uint8_t* qs, size_t, int) {
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
  }

  // Spread the 32 bits over 32 bytes: byte j gets a copy of qh's byte j / 8, keeps only bit j % 8 (the OR sets all
  // other bits), and compares equal to all-ones exactly when that bit was set.
  static Int withFifthBits(Int q, const uint8_t* qh, size_t, int) {
    uint32_t bits;
    std::memcpy(&bits, qh, sizeof bits);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                 0x0101010101010101, 0x0000000000000000));
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi8(-1));
    return _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(16)));
  }

  static Int flipTopBits(Int q) { return _mm256_xor_si256(q, _mm256_set1_epi8(-128)); }

  // maddubs multiplies unsigned by signed bytes and sums pairs to int16 (saturating); madd with ones sums the pairs
  // to int32. Unsigned weights ("_1" formats, 0..31) go in as they are. Offset weights become signed, q - offset, and
  // go in as |w| with their signs moved onto the activation, sign(a, w) * |w| = a * w: the alternative, subtracting
  // offset * sum(a), would saturate for Q8_0's offset of 128. No pair saturates: |w| <= 128 and Q8 activations are
  // within +-127, so a pair is at most 2 * 128 * 127 = 32512.
  struct UnsignedBytes {
    __m256i q;
  };
  struct SignedBytes {
    __m256i magnitude, sign;
  };

  template <int kOffset, int kRows>
  static auto prepareWeights(Int q) {
    if constexpr (kOffset == 0) {
      return UnsignedBytes{q};
    } else {
      const __m256i w = _mm256_sub_epi8(q, _mm256_set1_epi8(static_cast<char>(kOffset)));
      return SignedBytes{_mm256_abs_epi8(w), w};  // abs(-128) is 0x80, read as unsigned 128
    }
  }

  static Int dot(const UnsignedBytes& w, Int a) {
    return sumPairs(_mm256_maddubs_epi16(w.q, a));
  }
  static Int dot(const SignedBytes& w, Int a) {
    return sumPairs(_mm256_maddubs_epi16(w.magnitude, _mm256_sign_epi8(a, w.sign)));
  }
  static Int sumPairs(Int pairs) { return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)); }

  static Float blockScales(const float* scales, int b) { return _mm256_broadcast_ss(scales + b); }
  static Float toFloat(Int v) { return _mm256_cvtepi32_ps(v); }
  static Float fma(Float a, Float b, Float c) { return _mm256_fmadd_ps(a, b, c); }
  static Float add(Float a, Float b) { return _mm256_add_ps(a, b); }
  static Float zero() { return _mm256_setzero_ps(); }
  static float horizontalSum(Float v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    return _mm_cvtss_f32(_mm_add_ss(sum, _mm_movehdup_ps(sum)));
  }

  // AVX2 gathers are slow on many cores (and under the Gather Data Sampling mitigation): collect the halves with
  // scalar moves, then convert 8 at a time. Not inlined: its temporaries would otherwise push the accumulators of
  // the block loop out of the 16 registers, costing a store per block instead of a spill per 16 blocks.
  __attribute__((noinline)) static void loadScales(const void* first, size_t stride, int k, Scales16& d,
                                                   Scales16* second) {
    const uint8_t* block = static_cast<const uint8_t*>(first);
    alignas(32) uint16_t halves[2][kScaleGroup] = {};
    for (int i = 0; i < k; ++i) std::memcpy(&halves[0][i], block + i * stride, 2);
    if (second) {
      for (int i = 0; i < k; ++i) std::memcpy(&halves[1][i], block + i * stride + 2, 2);
    }
    for (int i = 0; i < kScaleGroup; i += 8) {
      _mm256_store_ps(d.at + i, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(&halves[0][i]))));
      if (second) {
        _mm256_store_ps(second->at + i,
                        _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(&halves[1][i]))));
      }
    }
  }
};

}  // namespace

const WeightKernels* avx2Kernels(GgmlType type) { return simdKernels<Avx2Ops>(type); }

}  // namespace pc::cpu::block32

#else

namespace pc::cpu::block32 {
const WeightKernels* avx2Kernels(GgmlType) { return nullptr; }
}  // namespace pc::cpu::block32

#endif
