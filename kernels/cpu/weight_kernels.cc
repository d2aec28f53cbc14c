#include "kernels/cpu/weight_kernels.h"

#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {

const WeightKernels* weightKernels(GgmlType type, Isa isa) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
      return floatWeightKernels(type, isa);
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
      return block32WeightKernels(type, isa);
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return kquantWeightKernels(type, isa);
    default:
      return nullptr;
  }
}

size_t activationRowBytes(GgmlType activation_type, int64_t n) {
  switch (activation_type) {
    case GgmlType::F32: return static_cast<size_t>(n) * sizeof(float);
    case GgmlType::F16:
    case GgmlType::BF16: return static_cast<size_t>(n) * sizeof(uint16_t);
    case GgmlType::Q8_0: return static_cast<size_t>(n / kBlock32) * sizeof(BlockQ8_0);
    case GgmlType::Q8_1: return static_cast<size_t>(n / kBlock32) * sizeof(BlockQ8_1);
    case GgmlType::Q8_K: return static_cast<size_t>(n / kBlockK) * sizeof(BlockQ8_K);
    default: return 0;
  }
}

}  // namespace pc::cpu
