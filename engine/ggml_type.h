// ggml tensor element types as stored in GGUF files: ids, names and block layouts.
// The reader must know the byte size of every type a file may contain to validate the tensor table, even of types
// the engine cannot compute with; which types the engine supports is a separate question (isSupportedWeightType).
#pragma once

#include <cstdint>
#include <string>

namespace pc {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;     // "Q4_K"
  int64_t block_size;   // elements per block (1 for plain floats)
  int64_t block_bytes;  // bytes per block
};

// Layout of a type id read from a file, or nullptr when the id is not a ggml type we know the layout of.
const GgmlTypeInfo* ggmlTypeInfo(uint32_t type_id);

// Name for messages: "Q4_K", or "unknown type 99".
std::string ggmlTypeName(uint32_t type_id);

// Types the engine's kernels compute with (weights and norms).
bool isSupportedWeightType(GgmlType type);
// Their names in id order, for messages: "F32, F16, Q4_0, ...".
std::string supportedWeightTypeNames();

}  // namespace pc
