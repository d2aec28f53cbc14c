// Block layouts of ggml's quantized types, byte for byte as stored in GGUF files (ggml-common.h). Weights use the
// first group; activations are quantized once per matrix product into the second (Q8_0, Q8_1, Q8_K) so that dot
// products run on integers.
#pragma once

#include <cstdint>

namespace pc::cpu {

using f16_t = uint16_t;   // IEEE half, raw bits
using bf16_t = uint16_t;  // bfloat16, raw bits

constexpr int kBlock32 = 32;   // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1
constexpr int kBlockK = 256;   // K-quants and Q8_K
constexpr int kScaleBytesK = 12;  // Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins

// ---- weights ----
struct BlockQ4_0 { f16_t d; uint8_t qs[kBlock32 / 2]; };                      // x = d * (q - 8)
struct BlockQ4_1 { f16_t d; f16_t m; uint8_t qs[kBlock32 / 2]; };             // x = d * q + m
struct BlockQ5_0 { f16_t d; uint8_t qh[4]; uint8_t qs[kBlock32 / 2]; };       // x = d * (q - 16), q 5 bits
struct BlockQ5_1 { f16_t d; f16_t m; uint8_t qh[4]; uint8_t qs[kBlock32 / 2]; };  // x = d * q + m
struct BlockQ8_0 { f16_t d; int8_t qs[kBlock32]; };                           // x = d * q
struct BlockQ4_K { f16_t d; f16_t dmin; uint8_t scales[kScaleBytesK]; uint8_t qs[kBlockK / 2]; };
struct BlockQ5_K { f16_t d; f16_t dmin; uint8_t scales[kScaleBytesK]; uint8_t qh[kBlockK / 8]; uint8_t qs[kBlockK / 2]; };
struct BlockQ6_K { uint8_t ql[kBlockK / 2]; uint8_t qh[kBlockK / 4]; int8_t scales[kBlockK / 16]; f16_t d; };

// ---- activations ----
struct BlockQ8_1 { f16_t d; f16_t s; int8_t qs[kBlock32]; };                 // s = d * sum(qs): the min terms of Q4_1/Q5_1
struct BlockQ8_K { float d; int8_t qs[kBlockK]; int16_t bsums[kBlockK / 16]; };  // bsums: sums of each 16 qs

static_assert(sizeof(BlockQ4_0) == 18, "ggml layout");
static_assert(sizeof(BlockQ4_1) == 20, "ggml layout");
static_assert(sizeof(BlockQ5_0) == 22, "ggml layout");
static_assert(sizeof(BlockQ5_1) == 24, "ggml layout");
static_assert(sizeof(BlockQ8_0) == 34, "ggml layout");
static_assert(sizeof(BlockQ8_1) == 36, "ggml layout");
static_assert(sizeof(BlockQ4_K) == 144, "ggml layout");
static_assert(sizeof(BlockQ5_K) == 176, "ggml layout");
static_assert(sizeof(BlockQ6_K) == 210, "ggml layout");
static_assert(sizeof(BlockQ8_K) == 292, "ggml layout");

}  // namespace pc::cpu
