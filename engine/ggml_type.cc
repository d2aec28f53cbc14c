#include "engine/ggml_type.h"

#include <iterator>

namespace pc {
namespace {

// Indexed by type id, as ggml's type_traits table (ggml/src/ggml.c); block sizes are the sizeof of the block
// structs in ggml/src/ggml-common.h. Ids ggml removed (4, 5, 31..33, 36..38) have no layout: a file using one is
// rejected as unknown rather than guessed at.
constexpr GgmlTypeInfo kTypes[] = {
    {"F32", 1, 4},        //  0
    {"F16", 1, 2},        //  1
    {"Q4_0", 32, 18},     //  2
    {"Q4_1", 32, 20},     //  3
    {nullptr, 0, 0},      //  4 (Q4_2, removed)
    {nullptr, 0, 0},      //  5 (Q4_3, removed)
    {"Q5_0", 32, 22},     //  6
    {"Q5_1", 32, 24},     //  7
    {"Q8_0", 32, 34},     //  8
    {"Q8_1", 32, 36},     //  9
    {"Q2_K", 256, 84},    // 10
    {"Q3_K", 256, 110},   // 11
    {"Q4_K", 256, 144},   // 12
    {"Q5_K", 256, 176},   // 13
    {"Q6_K", 256, 210},   // 14
    {"Q8_K", 256, 292},   // 15
    {"IQ2_XXS", 256, 66}, // 16
    {"IQ2_XS", 256, 74},  // 17
    {"IQ3_XXS", 256, 98}, // 18
    {"IQ1_S", 256, 50},   // 19
    {"IQ4_NL", 32, 18},   // 20
    {"IQ3_S", 256, 110},  // 21
    {"IQ2_S", 256, 82},   // 22
    {"IQ4_XS", 256, 136}, // 23
    {"I8", 1, 1},         // 24
    {"I16", 1, 2},        // 25
    {"I32", 1, 4},        // 26
    {"I64", 1, 8},        // 27
    {"F64", 1, 8},        // 28
    {"IQ1_M", 256, 56},   // 29
    {"BF16", 1, 2},       // 30
    {nullptr, 0, 0},      // 31 (Q4_0_4_4, removed from GGUF)
    {nullptr, 0, 0},      // 32 (Q4_0_4_8, removed from GGUF)
    {nullptr, 0, 0},      // 33 (Q4_0_8_8, removed from GGUF)
    {"TQ1_0", 256, 54},   // 34
    {"TQ2_0", 256, 66},   // 35
    {nullptr, 0, 0},      // 36 (IQ4_NL_4_4, removed from GGUF)
    {nullptr, 0, 0},      // 37 (IQ4_NL_4_8, removed from GGUF)
    {nullptr, 0, 0},      // 38 (IQ4_NL_8_8, removed from GGUF)
    {"MXFP4", 32, 17},    // 39
};

}  // namespace

const GgmlTypeInfo* ggmlTypeInfo(uint32_t type_id) {
  if (type_id >= std::size(kTypes) || kTypes[type_id].name == nullptr) return nullptr;
  return &kTypes[type_id];
}

std::string ggmlTypeName(uint32_t type_id) {
  const GgmlTypeInfo* info = ggmlTypeInfo(type_id);
  return info ? info->name : "unknown type " + std::to_string(type_id);
}

bool isSupportedWeightType(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

std::string supportedWeightTypeNames() {
  std::string names;
  for (uint32_t id = 0; id < std::size(kTypes); ++id) {
    if (kTypes[id].name != nullptr && isSupportedWeightType(static_cast<GgmlType>(id))) {
      names += (names.empty() ? "" : ", ") + std::string(kTypes[id].name);
    }
  }
  return names;
}

}  // namespace pc
