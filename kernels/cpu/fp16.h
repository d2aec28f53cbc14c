// Scalar half and bfloat16 conversions, bit-exact with ggml's reference conversions (round to nearest even; NaN
// stays NaN). The SIMD kernels use F16C / AVX-512 conversions, which round the same way.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {

inline uint32_t floatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float bitsFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline float f16ToF32(f16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  uint32_t mantissa = h & 0x3FF;
  if (exponent == 0x1F) return bitsFloat(sign | 0x7F800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return bitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bitsFloat(sign);
  // Subnormal half: normalise into a float.
  int shift = 0;
  while (!(mantissa & 0x400)) {
    mantissa <<= 1;
    ++shift;
  }
  return bitsFloat(sign | static_cast<uint32_t>(113 - shift) << 23 | ((mantissa & 0x3FF) << 13));
}

inline f16_t f32ToF16(float value) {
  const uint32_t bits = floatBits(value);
  const uint32_t sign = (bits >> 16) & 0x8000;
  const uint32_t abs = bits & 0x7FFFFFFF;
  if (abs > 0x7F800000) return static_cast<f16_t>(sign | 0x7E00 | ((abs >> 13) & 0x3FF));  // NaN stays NaN
  if (abs >= 0x477FF000) return static_cast<f16_t>(sign | 0x7C00);  // rounds to >= 65520: infinity
  if (abs < 0x38800000) {
    // Result is subnormal (or zero): shift the implicit-one mantissa into place and round to nearest even.
    if (abs < 0x33000000) return static_cast<f16_t>(sign);  // below half the smallest subnormal
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7FFFFF) | 0x800000;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t half = mantissa >> shift;
    const uint32_t remainder = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half & 1))) ++half;
    return static_cast<f16_t>(sign | half);
  }
  // Normal: rebias the exponent and round the mantissa to 10 bits, nearest even (a carry may bump the exponent).
  uint32_t half = ((abs - 0x38000000) >> 13);
  const uint32_t remainder = abs & 0x1FFF;
  if (remainder > 0x1000 || (remainder == 0x1000 && (half & 1))) ++half;
  return static_cast<f16_t>(sign | half);
}

inline float bf16ToF32(bf16_t h) { return bitsFloat(static_cast<uint32_t>(h) << 16); }

inline bf16_t f32ToBf16(float value) {
  const uint32_t bits = floatBits(value);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return static_cast<bf16_t>((bits >> 16) | 64);  // quiet NaN, as ggml
  return static_cast<bf16_t>((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16);
}

}  // namespace pc::cpu
