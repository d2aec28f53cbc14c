// The one interface between matrix products and the per-type, per-ISA kernels. For each weight type a table says
// how activations are prepared (quantized once per product to the type's partner format) and how a weight row is
// dotted with prepared activation rows. Every table entry exists in a scalar reference version; AVX2 and AVX-512
// versions are chosen at run time by CPUID (isa.h), and tests compare each against the reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/ggml_type.h"
#include "kernels/cpu/isa.h"

namespace pc::cpu {

struct WeightKernels {
  GgmlType weight_type;
  GgmlType activation_type;  // F32, F16, BF16, Q8_0, Q8_1 or Q8_K: what llama.cpp pairs with this weight type
  int64_t block_size;        // elements per weight block (row lengths are multiples of it)

  // Prepares one activation row of n floats (n a multiple of block_size) into `out`
  // (activationRowBytes(activation_type, n) bytes).
  void (*prepare_activation)(const float* x, void* out, int64_t n);

  // out[j] = dot(weight_row, activation row j) for j < count; activation rows are `activation_stride` bytes apart.
  // One weight row against several activation rows lets prompt processing reuse each decoded weight block.
  void (*dot_rows)(int64_t n, const void* weight_row, const void* activations, size_t activation_stride, int count,
                   float* out);

  // Decodes one weight row of n elements to floats (embedding lookup, tests).
  void (*dequantize_row)(const void* weight_row, float* out, int64_t n);
};

// The kernels for `type` at `isa` (falling back to the best lower ISA that implements it); nullptr for types the
// engine does not support.
const WeightKernels* weightKernels(GgmlType type, Isa isa);

// Bytes of one prepared activation row of n elements.
size_t activationRowBytes(GgmlType activation_type, int64_t n);

// The per-family tables, defined in the files that implement them (weight_kernels.cc assembles the lookup).
const WeightKernels* floatWeightKernels(GgmlType type, Isa isa);      // F32, F16, BF16 — float_kernels*.cc
const WeightKernels* block32WeightKernels(GgmlType type, Isa isa);    // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 — block32_kernels*.cc
const WeightKernels* kquantWeightKernels(GgmlType type, Isa isa);     // Q4_K Q5_K Q6_K — kquant_kernels*.cc

}  // namespace pc::cpu
