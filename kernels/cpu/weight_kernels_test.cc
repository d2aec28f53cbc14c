// Every weight type's kernels, through the one lookup the engine uses (weightKernels), on every ISA this machine
// has: each SIMD table against the scalar reference, and the scalar reference against plain float arithmetic on the
// dequantized weights. Errors are normalized squared errors, sum((a - b)^2) / sum(a^2), as llama.cpp's
// test-backend-ops measures them; each check prints its worst figure per type and ISA.
//
// Thresholds:
//   SIMD dot_rows vs scalar, same prepared activations     1e-10  identical integers/products; only the order of
//                                                                  the float sums differs
//   SIMD prepare_activation vs scalar, as decoded floats   1e-6   and at most 0.1% of elements different: the Q8
//                                                                  quantizers differ only in 1-ulp ties (see
//                                                                  block32_kernels.h)
//   quantized dot vs dequantized-weight float dot          Q8 activations 2e-3, BF16 1e-4, F16 1e-6, F32 1e-10:
//                                                                  the rounding of the activation alone
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "engine/testing/check.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/random_weights.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc::cpu {
namespace {

constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                               GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                               GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
constexpr int kMaxCount = 9;  // activation rows per dot_rows call: every tile size of every ISA, and a remainder

std::string typeName(GgmlType type) { return ggmlTypeName(static_cast<uint32_t>(type)); }

std::vector<Isa> simdIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (isa <= detectIsa()) isas.push_back(isa);
  }
  return isas;
}

// Row lengths: odd and even multiples of the block size, so that every vector loop has a remainder somewhere.
std::vector<int64_t> rowLengths(int64_t block_size) {
  if (block_size == 1) return {1, 7, 33, 100, 1056, 2816};
  if (block_size == kBlock32) return {32, 32 * 7, 32 * 33, 256 * 3, 256 * 11};
  return {256, 256 * 3, 256 * 11};
}

double normalizedSquaredError(const std::vector<float>& reference, const std::vector<float>& value) {
  double error = 0.0, norm = 0.0;
  for (size_t i = 0; i < reference.size(); ++i) {
    error += (static_cast<double>(reference[i]) - value[i]) * (static_cast<double>(reference[i]) - value[i]);
    norm += static_cast<double>(reference[i]) * reference[i];
  }
  return norm > 0.0 ? error / norm : error;
}

std::vector<float> randomFloats(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = normal(rng);
  return values;
}

// A prepared activation row back as floats, to compare two preparations of the same row.
std::vector<float> decodeActivation(GgmlType type, const uint8_t* row, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint16_t half;
    switch (type) {
      case GgmlType::F32: std::memcpy(&out[i], row + 4 * i, 4); break;
      case GgmlType::F16: std::memcpy(&half, row + 2 * i, 2); out[i] = f16ToF32(half); break;
      case GgmlType::BF16: std::memcpy(&half, row + 2 * i, 2); out[i] = bf16ToF32(half); break;
      case GgmlType::Q8_0: {
        const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(row)[i / kBlock32];
        out[i] = f16ToF32(block.d) * block.qs[i % kBlock32];
        break;
      }
      case GgmlType::Q8_1: {
        const BlockQ8_1& block = reinterpret_cast<const BlockQ8_1*>(row)[i / kBlock32];
        out[i] = f16ToF32(block.d) * block.qs[i % kBlock32];
        break;
      }
      case GgmlType::Q8_K: {
        const BlockQ8_K& block = reinterpret_cast<const BlockQ8_K*>(row)[i / kBlockK];
        out[i] = block.d * block.qs[i % kBlockK];
        break;
      }
      default: pc::testing::fail(__FILE__, __LINE__, "no decoder for activation type " + typeName(type));
    }
  }
  return out;
}

// Activation rows prepared by one table: kMaxCount rows `stride` bytes apart, the buffer ending exactly at the last
// row's last byte so that AddressSanitizer sees any read past it.
struct PreparedRows {
  std::vector<uint8_t> bytes;
  size_t row_bytes = 0;
  size_t stride = 0;
};

PreparedRows prepareRows(const WeightKernels& kernels, const std::vector<std::vector<float>>& x, int64_t n) {
  PreparedRows rows;
  rows.row_bytes = activationRowBytes(kernels.activation_type, n);
  rows.stride = rows.row_bytes + 64;  // padding between rows: a kernel that ignores the stride reads garbage
  rows.bytes.assign(rows.stride * (x.size() - 1) + rows.row_bytes, 0);
  for (size_t r = 0; r < x.size(); ++r) kernels.prepare_activation(x[r].data(), &rows.bytes[r * rows.stride], n);
  return rows;
}

// out[count * w + r] = dot(weight row w, activation row r) for every count 1..kMaxCount, each weight row in a buffer
// of its own exact size.
std::vector<float> allDots(const WeightKernels& kernels, const std::vector<std::vector<uint8_t>>& weight_rows,
                           const PreparedRows& rows, int64_t n) {
  std::vector<float> out;
  for (int count = 1; count <= kMaxCount; ++count) {
    for (const std::vector<uint8_t>& w : weight_rows) {
      std::vector<float> dots(static_cast<size_t>(count));
      kernels.dot_rows(n, w.data(), rows.bytes.data(), rows.stride, count, dots.data());
      out.insert(out.end(), dots.begin(), dots.end());
    }
  }
  return out;
}

struct TypeData {
  int64_t n;
  std::vector<std::vector<uint8_t>> weight_rows;
  std::vector<std::vector<float>> x;  // kMaxCount activation rows
};

TypeData makeData(GgmlType type, int64_t n, uint64_t seed) {
  constexpr int kWeightRows = 3;
  const std::vector<uint8_t> matrix = randomWeightRows(type, kWeightRows, n, seed);
  const size_t row_bytes = weightRowBytes(type, n);
  TypeData data{n, {}, {}};
  for (int w = 0; w < kWeightRows; ++w) {
    data.weight_rows.emplace_back(matrix.begin() + w * row_bytes, matrix.begin() + (w + 1) * row_bytes);
  }
  for (int r = 0; r < kMaxCount; ++r) data.x.push_back(randomFloats(n, seed * 100 + r));
  return data;
}

const WeightKernels& kernelsOf(GgmlType type, Isa isa) {
  const WeightKernels* kernels = weightKernels(type, isa);
  if (!kernels) {
    pc::testing::fail(__FILE__, __LINE__, "no " + std::string(isaName(isa)) + " kernels for " + typeName(type));
  }
  return *kernels;
}

// ---- the tables ----

PC_TEST(every_type_has_kernels_paired_as_llama_cpp) {
  struct Pairing {
    GgmlType weight, activation;
    int64_t block_size;
  };
  const Pairing pairings[] = {
      {GgmlType::F32, GgmlType::F32, 1},        {GgmlType::F16, GgmlType::F16, 1},
      {GgmlType::BF16, GgmlType::BF16, 1},      {GgmlType::Q4_0, GgmlType::Q8_0, 32},
      {GgmlType::Q4_1, GgmlType::Q8_1, 32},     {GgmlType::Q5_0, GgmlType::Q8_0, 32},
      {GgmlType::Q5_1, GgmlType::Q8_1, 32},     {GgmlType::Q8_0, GgmlType::Q8_0, 32},
      {GgmlType::Q4_K, GgmlType::Q8_K, 256},    {GgmlType::Q5_K, GgmlType::Q8_K, 256},
      {GgmlType::Q6_K, GgmlType::Q8_K, 256},
  };
  std::vector<Isa> isas = simdIsas();
  isas.push_back(Isa::Scalar);
  for (const Pairing& p : pairings) {
    for (Isa isa : isas) {
      const WeightKernels& kernels = kernelsOf(p.weight, isa);
      PC_CHECK(kernels.weight_type == p.weight);
      PC_CHECK(kernels.activation_type == p.activation);
      PC_CHECK_EQ(kernels.block_size, p.block_size);
      PC_CHECK(kernels.prepare_activation && kernels.dot_rows && kernels.dequantize_row);
    }
  }
  PC_CHECK(weightKernels(GgmlType::Q8_1, Isa::Scalar) == nullptr);  // an activation format, never a weight
}

// ---- SIMD against the scalar reference ----

// Sums for a normalized squared error gathered over many comparisons.
struct ErrorSum {
  double error = 0.0, norm = 0.0;
  void add(const std::vector<float>& reference, const std::vector<float>& value) {
    for (size_t i = 0; i < reference.size(); ++i) {
      error += (static_cast<double>(reference[i]) - value[i]) * (static_cast<double>(reference[i]) - value[i]);
      norm += static_cast<double>(reference[i]) * reference[i];
    }
  }
  double normalized() const { return norm > 0.0 ? error / norm : error; }
};

void checkSimdAgainstScalar(GgmlType type) {
  const WeightKernels& scalar = kernelsOf(type, Isa::Scalar);
  for (Isa isa : simdIsas()) {
    const WeightKernels& simd = kernelsOf(type, isa);
    double worst_dot = 0.0;
    ErrorSum prepare, pipeline;  // over all rows and lengths: a single rounding tie in a 32-element row is no failure
    int64_t differing = 0, elements = 0;
    for (int64_t n : rowLengths(scalar.block_size)) {
      const TypeData data = makeData(type, n, static_cast<uint64_t>(n) * 31 + static_cast<uint64_t>(type));
      const PreparedRows reference_rows = prepareRows(scalar, data.x, n);
      const PreparedRows simd_rows = prepareRows(simd, data.x, n);
      const std::vector<float> reference = allDots(scalar, data.weight_rows, reference_rows, n);

      // Same prepared activations: the dot products must agree to float summation order.
      worst_dot = std::max(worst_dot,
                           normalizedSquaredError(reference, allDots(simd, data.weight_rows, reference_rows, n)));

      // The preparations themselves: equal but for rare ties.
      for (int r = 0; r < kMaxCount; ++r) {
        const std::vector<float> a =
            decodeActivation(scalar.activation_type, &reference_rows.bytes[r * reference_rows.stride], n);
        const std::vector<float> b = decodeActivation(simd.activation_type, &simd_rows.bytes[r * simd_rows.stride], n);
        for (int64_t i = 0; i < n; ++i) differing += a[i] != b[i];
        elements += n;
        prepare.add(a, b);
      }

      // Each ISA's whole pipeline.
      pipeline.add(reference, allDots(simd, data.weight_rows, simd_rows, n));
    }
    const double differing_fraction = static_cast<double>(differing) / static_cast<double>(elements);
    std::printf("     %-5s %-6s  dot %.2e  prepare %.2e (%lld of %lld elements differ)  prepare+dot %.2e\n",
                typeName(type).c_str(), isaName(isa), worst_dot, prepare.normalized(),
                static_cast<long long>(differing), static_cast<long long>(elements), pipeline.normalized());
    PC_CHECK(worst_dot <= 1e-10);
    PC_CHECK(prepare.normalized() <= 1e-6);
    PC_CHECK(differing_fraction <= 1e-3);
    PC_CHECK(pipeline.normalized() <= 1e-6);
  }
}

PC_TEST(simd_f32_matches_scalar) { checkSimdAgainstScalar(GgmlType::F32); }
PC_TEST(simd_f16_matches_scalar) { checkSimdAgainstScalar(GgmlType::F16); }
PC_TEST(simd_bf16_matches_scalar) { checkSimdAgainstScalar(GgmlType::BF16); }
PC_TEST(simd_q4_0_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q4_0); }
PC_TEST(simd_q4_1_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q4_1); }
PC_TEST(simd_q5_0_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q5_0); }
PC_TEST(simd_q5_1_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q5_1); }
PC_TEST(simd_q8_0_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q8_0); }
PC_TEST(simd_q4_k_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q4_K); }
PC_TEST(simd_q5_k_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q5_K); }
PC_TEST(simd_q6_k_matches_scalar) { checkSimdAgainstScalar(GgmlType::Q6_K); }

// ---- the scalar reference against float arithmetic on the dequantized weights ----

double activationRoundingBound(GgmlType activation_type) {
  switch (activation_type) {
    case GgmlType::F32: return 1e-10;
    case GgmlType::F16: return 1e-6;
    case GgmlType::BF16: return 1e-4;
    default: return 2e-3;  // 8-bit activations: error ~ (amax / 127)^2 / 12 per element, ~5e-5 relative
  }
}

void checkAgainstDequantized(GgmlType type) {
  const WeightKernels& scalar = kernelsOf(type, Isa::Scalar);
  double worst = 0.0;
  for (int64_t n : rowLengths(scalar.block_size)) {
    const TypeData data = makeData(type, n, static_cast<uint64_t>(n) * 17 + static_cast<uint64_t>(type));
    const PreparedRows rows = prepareRows(scalar, data.x, n);
    std::vector<float> exact, quantized;
    for (const std::vector<uint8_t>& w : data.weight_rows) {
      std::vector<float> weights(static_cast<size_t>(n));
      scalar.dequantize_row(w.data(), weights.data(), n);
      for (const std::vector<float>& x : data.x) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(weights[i]) * x[i];
        exact.push_back(static_cast<float>(sum));
      }
      std::vector<float> dots(kMaxCount);
      scalar.dot_rows(n, w.data(), rows.bytes.data(), rows.stride, kMaxCount, dots.data());
      quantized.insert(quantized.end(), dots.begin(), dots.end());
    }
    worst = std::max(worst, normalizedSquaredError(exact, quantized));
  }
  std::printf("     %-5s vs dequantized float dot %.2e (bound %.0e)\n", typeName(type).c_str(), worst,
              activationRoundingBound(scalar.activation_type));
  PC_CHECK(worst <= activationRoundingBound(scalar.activation_type));
}

PC_TEST(f32_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::F32); }
PC_TEST(f16_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::F16); }
PC_TEST(bf16_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::BF16); }
PC_TEST(q4_0_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q4_0); }
PC_TEST(q4_1_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q4_1); }
PC_TEST(q5_0_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q5_0); }
PC_TEST(q5_1_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q5_1); }
PC_TEST(q8_0_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q8_0); }
PC_TEST(q4_k_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q4_K); }
PC_TEST(q5_k_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q5_K); }
PC_TEST(q6_k_dot_matches_dequantized) { checkAgainstDequantized(GgmlType::Q6_K); }

// ---- golden blocks built by hand ----

std::vector<Isa> allIsas() {
  std::vector<Isa> isas = simdIsas();
  isas.insert(isas.begin(), Isa::Scalar);
  return isas;
}

// Q4_0 with d = 0.5: byte j holds weight j in its low nibble and weight j + 16 in its high nibble, x = d * (q - 8).
BlockQ4_0 goldenQ4_0() {
  BlockQ4_0 block{};
  block.d = f32ToF16(0.5f);
  for (int j = 0; j < 16; ++j) block.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  return block;
}

PC_TEST(golden_q4_0_block_decodes_and_dots) {
  const BlockQ4_0 block = goldenQ4_0();
  float expected[kBlock32];
  for (int j = 0; j < 16; ++j) {
    expected[j] = 0.5f * static_cast<float>(j - 8);        // -4.0 .. 3.5
    expected[j + 16] = 0.5f * static_cast<float>(7 - j);   // 3.5 .. -4.0
  }
  // Activations: all ones, quantized exactly (amax 1 -> d = 1/127, q = 127).
  std::vector<float> ones(kBlock32, 1.0f);
  for (Isa isa : allIsas()) {
    const WeightKernels& kernels = kernelsOf(GgmlType::Q4_0, isa);
    float decoded[kBlock32];
    kernels.dequantize_row(&block, decoded, kBlock32);
    for (int j = 0; j < kBlock32; ++j) PC_CHECK_EQ(decoded[j], expected[j]);
    BlockQ8_0 a;
    kernels.prepare_activation(ones.data(), &a, kBlock32);
    for (int j = 0; j < kBlock32; ++j) PC_CHECK_EQ(static_cast<int>(a.qs[j]), 127);
    // sum(q - 8) = sum over j of (j - 8) + (7 - j) = -16; times 127, times d_w * d_a = 0.5 * f16(1/127).
    float dot = 0.0f;
    kernels.dot_rows(kBlock32, &block, &a, sizeof a, 1, &dot);
    PC_CHECK_EQ(dot, -16.0f * 127.0f * 0.5f * f16ToF32(f32ToF16(1.0f / 127.0f)));
  }
}

// The fifth bit of weight j is bit j of qh; the "_1" formats add m.
PC_TEST(golden_q5_blocks_take_bit_j_of_qh_for_weight_j) {
  BlockQ5_0 q5_0{};
  BlockQ5_1 q5_1{};
  q5_0.d = q5_1.d = f32ToF16(1.0f);
  q5_1.m = f32ToF16(-2.0f);
  const uint32_t qh = 0x80000001u | 1u << 16;  // weights 0, 16 and 31
  std::memcpy(q5_0.qh, &qh, 4);
  std::memcpy(q5_1.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) q5_0.qs[j] = q5_1.qs[j] = static_cast<uint8_t>(3 | 5 << 4);  // low 3, high 5
  for (Isa isa : allIsas()) {
    float x0[kBlock32], x1[kBlock32];
    kernelsOf(GgmlType::Q5_0, isa).dequantize_row(&q5_0, x0, kBlock32);
    kernelsOf(GgmlType::Q5_1, isa).dequantize_row(&q5_1, x1, kBlock32);
    for (int j = 0; j < kBlock32; ++j) {
      const int q = (j < 16 ? 3 : 5) + ((qh >> j) & 1 ? 16 : 0);
      PC_CHECK_EQ(x0[j], static_cast<float>(q - 16));
      PC_CHECK_EQ(x1[j], static_cast<float>(q) - 2.0f);
    }
    // Activations 0..30 and 127: amax 127 makes d = 1, so they quantize to themselves and the dot is exact.
    std::vector<float> x(kBlock32);
    for (int j = 0; j < kBlock32; ++j) x[j] = j == 31 ? 127.0f : static_cast<float>(j);
    BlockQ8_0 a0;
    BlockQ8_1 a1;
    kernelsOf(GgmlType::Q5_0, isa).prepare_activation(x.data(), &a0, kBlock32);
    kernelsOf(GgmlType::Q5_1, isa).prepare_activation(x.data(), &a1, kBlock32);
    double e0 = 0.0, e1 = 0.0;
    for (int j = 0; j < kBlock32; ++j) {
      e0 += x0[j] * x[j];
      e1 += x1[j] * x[j];
    }
    float d0 = 0.0f, d1 = 0.0f;
    kernelsOf(GgmlType::Q5_0, isa).dot_rows(kBlock32, &q5_0, &a0, sizeof a0, 1, &d0);
    kernelsOf(GgmlType::Q5_1, isa).dot_rows(kBlock32, &q5_1, &a1, sizeof a1, 1, &d1);
    PC_CHECK_EQ(d0, static_cast<float>(e0));
    PC_CHECK_EQ(d1, static_cast<float>(e1));
  }
}

// Q8 activation quantization: d = amax / 127; the reference rounds halves away from zero (roundf), the SIMD
// versions to even (ggml's x86 _mm256_round_ps). amax = 127 makes d = 1 and x / d exact, exposing the ties.
PC_TEST(golden_q8_activation_rounding) {
  std::vector<float> x(kBlock32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;
  x[4] = -0.4f;
  for (Isa isa : allIsas()) {
    BlockQ8_1 a;
    kernelsOf(GgmlType::Q4_1, isa).prepare_activation(x.data(), &a, kBlock32);
    PC_CHECK_EQ(f16ToF32(a.d), 1.0f);
    const int tie = isa == Isa::Scalar ? 3 : 2;
    PC_CHECK_EQ(static_cast<int>(a.qs[0]), 127);
    PC_CHECK_EQ(static_cast<int>(a.qs[1]), tie);
    PC_CHECK_EQ(static_cast<int>(a.qs[2]), -tie);
    PC_CHECK_EQ(static_cast<int>(a.qs[3]), 4);
    PC_CHECK_EQ(static_cast<int>(a.qs[4]), 0);
    PC_CHECK_EQ(f16ToF32(a.s), static_cast<float>(127 + 4));  // s = d * sum(q)
  }
}

PC_TEST(zero_activation_row_gives_zero) {
  for (GgmlType type : kTypes) {
    for (Isa isa : allIsas()) {
      const WeightKernels& kernels = kernelsOf(type, isa);
      const int64_t n = kernels.block_size == 1 ? 64 : kernels.block_size * 2;
      const std::vector<uint8_t> w = randomWeightRows(type, 1, n, 7);
      const std::vector<float> x(static_cast<size_t>(n), 0.0f);
      std::vector<uint8_t> a(activationRowBytes(kernels.activation_type, n));
      kernels.prepare_activation(x.data(), a.data(), n);
      float dot = 1.0f;
      kernels.dot_rows(n, w.data(), a.data(), a.size(), 1, &dot);
      PC_CHECK_EQ(dot, 0.0f);
    }
  }
}

// Narrowing to F16/BF16 is bit-exact on every ISA, ties, subnormals, overflow and NaN included.
PC_TEST(float_activation_rounding_is_bit_exact) {
  std::vector<float> x = randomFloats(1000, 3);
  const float special[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-8f, -6e-5f, 1e30f, INFINITY, -INFINITY, NAN,
                           bitsFloat(0x3F808000u), bitsFloat(0x3F818000u), bitsFloat(0x33800000u)};
  for (size_t i = 0; i < std::size(special); ++i) x[i * 7] = special[i];
  for (GgmlType type : {GgmlType::F16, GgmlType::BF16}) {
    std::vector<uint16_t> reference(x.size()), simd(x.size());
    kernelsOf(type, Isa::Scalar).prepare_activation(x.data(), reference.data(), static_cast<int64_t>(x.size()));
    for (Isa isa : simdIsas()) {
      kernelsOf(type, isa).prepare_activation(x.data(), simd.data(), static_cast<int64_t>(x.size()));
      for (size_t i = 0; i < x.size(); ++i) PC_CHECK_EQ(simd[i], reference[i]);
    }
  }
}

}  // namespace
}  // namespace pc::cpu
