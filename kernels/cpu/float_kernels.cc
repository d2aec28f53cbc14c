// Scalar reference for float weights: ggml's scalar ggml_vec_dot_f32 / f16 / bf16 (f32 products summed in double)
// after rounding the activation to the weight's type. The definition the SIMD versions are tested against.
#include "kernels/cpu/float_kernels.h"

namespace pc::cpu {
namespace floating {
namespace {

template <GgmlType kType>
using Storage = typename Element<kType>::Storage;

template <GgmlType kType>
void prepareRow(const float* x, void* out, int64_t n) {
  Storage<kType>* narrow = static_cast<Storage<kType>*>(out);
  for (int64_t i = 0; i < n; ++i) narrow[i] = Element<kType>::narrow(x[i]);
}

template <GgmlType kType>
void dotRows(int64_t n, const void* weight_row, const void* activations, size_t activation_stride, int count,
             float* out) {
  const Storage<kType>* w = static_cast<const Storage<kType>*>(weight_row);
  for (int r = 0; r < count; ++r) {
    const Storage<kType>* a = reinterpret_cast<const Storage<kType>*>(static_cast<const uint8_t*>(activations) +
                                                                      r * activation_stride);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += Element<kType>::widen(w[i]) * Element<kType>::widen(a[i]);
    out[r] = static_cast<float>(sum);
  }
}

template <GgmlType kType>
void dequantizeRow(const void* weight_row, float* out, int64_t n) {
  const Storage<kType>* w = static_cast<const Storage<kType>*>(weight_row);
  for (int64_t i = 0; i < n; ++i) out[i] = Element<kType>::widen(w[i]);
}

template <GgmlType kType>
const WeightKernels* kernelsFor() {
  static const WeightKernels kernels{kType, kType, 1, prepareRow<kType>, dotRows<kType>, dequantizeRow<kType>};
  return &kernels;
}

}  // namespace

const WeightKernels* scalarKernels(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return kernelsFor<GgmlType::F32>();
    case GgmlType::F16: return kernelsFor<GgmlType::F16>();
    case GgmlType::BF16: return kernelsFor<GgmlType::BF16>();
    default: return nullptr;
  }
}

}  // namespace floating

const WeightKernels* floatWeightKernels(GgmlType type, Isa isa) {
  const WeightKernels* kernels = nullptr;
  if (isa >= Isa::Avx512) kernels = floating::avx512Kernels(type);
  if (!kernels && isa >= Isa::Avx2) kernels = floating::avx2Kernels(type);
  return kernels ? kernels : floating::scalarKernels(type);
}

}  // namespace pc::cpu
