// AVX-512 (F/BW/VL/DQ + VNNI) kernels for the 32-weight block formats: block32_simd.h with two blocks per zmm, VNNI's
// dpbusd (one instruction for AVX2's maddubs + madd, and no saturation), mask registers for Q5's fifth bits, a
// gather for the f16 scales, and 32 vector registers for tiles of 8 activation rows.
#include "kernels/cpu/block32_kernels.h"

#if defined(__AVX512F__)
// GCC 12's _mm512_undefined_*() self-initialize (`__m512i __Y = __Y;`), which -W(maybe-)uninitialized reports
// wherever an intrinsic using them is inlined (most AVX-512 ones with a mask form).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/block32_simd.h"

namespace pc::cpu::block32 {
namespace {

struct Avx512Ops {
  using Int = __m512i;
  using Float = __m512;
  static constexpr int kBlocks = 2;
  static constexpr int kMaxRows = 8;

  // Block 0 in the low 256 bits, block 1 (only when valid == 2: a lone last block never reads past its row) high.
  template <class Load>
  static Int pair(const uint8_t* p, size_t stride, int valid, Load load) {
    const __m256i second = valid == 2 ? load(p + stride) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(load(p)), second, 1);
  }

  static Int bytes(const void* p, size_t stride, int valid) {
    return pair(static_cast<const uint8_t*>(p), stride, valid,
                [](const uint8_t* q) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)); });
  }

  // Each block's 16 packed bytes broadcast to both of its 128-bit quarters, the upper one shifted right by 4.
  static Int nibbles(const uint8_t* qs, size_t stride, int valid) {
    const Int both = pair(qs, stride, valid, [](const uint8_t* q) {
      return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    });
    return _mm512_and_si512(_mm512_srlv_epi64(both, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                            _mm512_set1_epi8(0x0F));
  }

  // The two 32-bit qh words are a 64-bit mask over the 64 bytes: add 16 where it is set.
  static Int withFifthBits(Int q, const uint8_t* qh, size_t stride, int valid) {
    uint32_t first, second = 0;
    std::memcpy(&first, qh, sizeof first);
    if (valid == 2) std::memcpy(&second, qh + stride, sizeof second);
    return _mm512_mask_add_epi8(q, _cvtu64_mask64(first | static_cast<uint64_t>(second) << 32), q,
                                _mm512_set1_epi8(16));
  }

  static Int flipTopBits(Int q) { return _mm512_xor_si512(q, _mm512_set1_epi8(-128)); }

  // dpbusd multiplies unsigned by signed bytes, 4 products per int32 lane, without saturation. The offset of the
  // "_0" formats, sum (q - o) * a, comes off in one of two ways:
  //   one row    dpbusd(q, a) - dpbusd(o, a)       nothing per weight block; per row 2 dpbusd and a subtraction
  //   many rows  dpbusd(init, a ^ 0x80, q - o)     the activation is the unsigned side now (a ^ 0x80 = a + 128); its
  //                                                excess 128 * sum(q - o) depends on the weights only and is taken
  //                                                off in advance: init = dpbusd(512 o, q, -128) = -128 sum(q - o)
  //                                                per lane. 2 ops per weight block, then 2 per row (xor, dpbusd).
  template <int kOffset, bool kManyRows>
  struct OffsetBytes {
    Int q;     // one row: the unsigned weights; many rows: q - kOffset
    Int init;  // many rows: -128 * sum(q - kOffset) per lane
  };

  template <int kOffset, int kRows>
  static auto prepareWeights(Int q) {
    constexpr bool kManyRows = kOffset != 0 && kRows > 1;
    if constexpr (kManyRows) {
      const Int init = _mm512_dpbusd_epi32(_mm512_set1_epi32(512 * kOffset), q, _mm512_set1_epi8(-128));
      return OffsetBytes<kOffset, true>{_mm512_sub_epi8(q, _mm512_set1_epi8(static_cast<char>(kOffset))), init};
    } else {
      return OffsetBytes<kOffset, false>{q, Int{}};
    }
  }

  template <int kOffset, bool kManyRows>
  static Int dot(const OffsetBytes<kOffset, kManyRows>& w, Int a) {
    if constexpr (kManyRows) return _mm512_dpbusd_epi32(w.init, _mm512_xor_si512(a, _mm512_set1_epi8(-128)), w.q);
    const Int sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.q, a);
    if constexpr (kOffset == 0) return sum;
    const Int offset = _mm512_set1_epi8(static_cast<char>(kOffset));
    return _mm512_sub_epi32(sum, _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, a));
  }

  // Two broadcast loads (no shuffle port) and one insert.
  static Float blockScales(const float* scales, int b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_broadcast_ss(scales + b)),
                              _mm256_broadcast_ss(scales + b + 1), 1);
  }
  static Float toFloat(Int v) { return _mm512_cvtepi32_ps(v); }
  static Float fma(Float a, Float b, Float c) { return _mm512_fmadd_ps(a, b, c); }
  static Float add(Float a, Float b) { return _mm512_add_ps(a, b); }
  static Float zero() { return _mm512_setzero_ps(); }
  static float horizontalSum(Float v) { return _mm512_reduce_add_ps(v); }

  // One gather reads the first 4 bytes of each of the 16 blocks: the low f16 is d, the high one m or s. (On the
  // target machine, count = 1 ran ~30% faster this way than with 16 scalar F16C conversions per group and row.)
  static void loadScales(const void* first, size_t stride, int k, Scales16& d, Scales16* second) {
    const __m512i offsets =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int>(stride)));
    const __m512i pairs = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), static_cast<__mmask16>((1u << k) - 1),
                                                      offsets, first, 1);
    d.v = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(pairs));
    if (second) second->v = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(pairs, 16)));
  }
};

}  // namespace

const WeightKernels* avx512Kernels(GgmlType type) { return simdKernels<Avx512Ops>(type); }

}  // namespace pc::cpu::block32

#else

namespace pc::cpu::block32 {
const WeightKernels* avx512Kernels(GgmlType) { return nullptr; }
}  // namespace pc::cpu::block32

#endif
