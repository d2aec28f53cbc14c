// Float weights (F32, F16, BF16), internal to the float kernel files: float_kernels.cc holds the scalar reference and
// the lookup, float_kernels_avx2.cc and _avx512.cc the SIMD versions, which share float_simd.h.
//
// As llama.cpp does, the activation row is first rounded to the weight's own type (ggml's vec_dot_type of F16 is
// F16, of BF16 is BF16), then both are widened to f32 and multiplied and summed in f32. The scalar reference sums
// in double, as ggml's scalar ggml_vec_dot_f16/bf16/f32 do; the SIMD versions in f32 vectors, as ggml's SIMD ones.
#pragma once

#include "engine/ggml_type.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc::cpu::floating {

// How one element of each float type is stored and converted (round to nearest even, as ggml).
template <GgmlType kType>
struct Element;

template <>
struct Element<GgmlType::F32> {
  using Storage = float;
  static float widen(float v) { return v; }
  static float narrow(float v) { return v; }
};
template <>
struct Element<GgmlType::F16> {
  using Storage = f16_t;
  static float widen(f16_t v) { return f16ToF32(v); }
  static f16_t narrow(float v) { return f32ToF16(v); }
};
template <>
struct Element<GgmlType::BF16> {
  using Storage = bf16_t;
  static float widen(bf16_t v) { return bf16ToF32(v); }
  static bf16_t narrow(float v) { return f32ToBf16(v); }
};

// The tables per ISA; the SIMD ones are nullptr where the file was built without that ISA (non-x86).
const WeightKernels* scalarKernels(GgmlType type);
const WeightKernels* avx2Kernels(GgmlType type);
const WeightKernels* avx512Kernels(GgmlType type);

}  // namespace pc::cpu::floating
