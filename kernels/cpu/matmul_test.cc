#include "kernels/cpu/matmul.h"

#include <cmath>
#include <cstring>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/testing/check.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/random_weights.h"
#include "kernels/cpu/repacked.h"
#include "kernels/cpu/weight_kernels.h"

namespace {

using namespace pc;
using namespace pc::cpu;

constexpr GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                                  GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                  GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::string typeName(GgmlType type) { return ggmlTypeName(static_cast<uint32_t>(type)); }

std::vector<Isa> testIsas() {
  std::vector<Isa> isas = {Isa::Scalar};
  if (detectIsa() >= Isa::Avx2) isas.push_back(Isa::Avx2);
  if (detectIsa() >= Isa::Avx512) isas.push_back(Isa::Avx512);
  return isas;
}

// A prepared activation row back to floats: the values the kernels actually multiply.
std::vector<float> dequantizeActivation(GgmlType type, const uint8_t* row, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  const auto blocks = [&](auto block, int64_t size, auto scale) {
    using Block = decltype(block);
    for (int64_t b = 0; b < n / size; ++b) {
      Block blk;
      std::memcpy(&blk, row + b * sizeof(Block), sizeof(Block));
      for (int64_t i = 0; i < size; ++i) x[static_cast<size_t>(b * size + i)] = scale(blk) * blk.qs[i];
    }
  };
  switch (type) {
    case GgmlType::F32: std::memcpy(x.data(), row, x.size() * sizeof(float)); break;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, sizeof h);
        x[static_cast<size_t>(i)] = type == GgmlType::F16 ? f16ToF32(h) : bf16ToF32(h);
      }
      break;
    case GgmlType::Q8_0: blocks(BlockQ8_0{}, kBlock32, [](const BlockQ8_0& b) { return f16ToF32(b.d); }); break;
    case GgmlType::Q8_1: blocks(BlockQ8_1{}, kBlock32, [](const BlockQ8_1& b) { return f16ToF32(b.d); }); break;
    case GgmlType::Q8_K: blocks(BlockQ8_K{}, kBlockK, [](const BlockQ8_K& b) { return b.d; }); break;
    default: PC_CHECK(!"unknown activation type");
  }
  return x;
}

double nse(const std::vector<double>& expected, const std::vector<float>& actual) {
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    err += (actual[i] - expected[i]) * (actual[i] - expected[i]);
    norm += expected[i] * expected[i];
  }
  return err / norm;
}

struct Product {
  std::vector<uint8_t> weights;
  MatrixView w;
  std::vector<float> x;
  std::vector<double> expected;  // (n_tokens, rows)
};

// A random product and its double-precision value over the dequantized weights and prepared activations.
Product randomProduct(GgmlType type, Isa isa, int64_t rows, int64_t cols, int64_t n_tokens, uint64_t seed) {
  Product p;
  p.weights = randomWeightRows(type, rows, cols, seed);
  p.w = {type, rows, cols, p.weights.data(), weightRowBytes(type, cols), nullptr};
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  p.x.resize(static_cast<size_t>(n_tokens * cols));
  for (float& v : p.x) v = normal(rng);

  const WeightKernels* reference = weightKernels(type, Isa::Scalar);
  const WeightKernels* kernels = weightKernels(type, isa);
  std::vector<float> w_row(static_cast<size_t>(cols));
  std::vector<std::vector<float>> acts;
  std::vector<uint8_t> prepared(activationRowBytes(kernels->activation_type, cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    kernels->prepare_activation(&p.x[static_cast<size_t>(t * cols)], prepared.data(), cols);
    acts.push_back(dequantizeActivation(kernels->activation_type, prepared.data(), cols));
  }
  p.expected.assign(static_cast<size_t>(n_tokens * rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    reference->dequantize_row(p.weights.data() + r * p.w.row_bytes, w_row.data(), cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double dot = 0.0;
      const std::vector<float>& a = acts[static_cast<size_t>(t)];
      for (int64_t i = 0; i < cols; ++i) dot += double{w_row[static_cast<size_t>(i)]} * a[static_cast<size_t>(i)];
      p.expected[static_cast<size_t>(t * rows + r)] = dot;
    }
  }
  return p;
}

std::vector<float> run(const Product& p, int64_t n_tokens, ThreadPool& pool, MatmulScratch& scratch, Isa isa) {
  std::vector<float> y(static_cast<size_t>(n_tokens * p.w.rows), NAN);
  matmul(p.w, p.x.data(), n_tokens, y.data(), pool, scratch, isa);
  return y;
}

PC_TEST(matmul_matches_double_reference_for_every_type) {
  // (rows, tokens): odd row counts, token counts on both sides of the 8-token tile, one row block and several.
  const std::pair<int64_t, int64_t> shapes[] = {{1, 5}, {37, 1}, {37, 3}, {16, 8}, {129, 9}, {129, 17}, {300, 64}};
  ThreadPool one(1), two(2);
  MatmulScratch scratch;
  uint64_t seed = 1;
  for (GgmlType type : kAllTypes) {
    const WeightKernels* reference = weightKernels(type, Isa::Scalar);
    if (!reference) continue;  // not in the table yet
    const int64_t block = reference->block_size;
    const int64_t col_options[] = {block == 1 ? 37 : block * 2, block == 1 ? 160 : block * 5};
    for (Isa isa : testIsas()) {
      // Q8_1 activations carry s = d * sum(q) in f16 for Q4_1/Q5_1's min term: that rounding is not in the
      // reference, so those types are compared more loosely.
      const double limit = weightKernels(type, isa)->activation_type == GgmlType::Q8_1 ? 1e-6 : 1e-10;
      double worst = 0.0;
      for (int64_t cols : col_options) {
        for (auto [rows, n_tokens] : shapes) {
          const Product p = randomProduct(type, isa, rows, cols, n_tokens, seed++);
          const std::vector<float> y1 = run(p, n_tokens, one, scratch, isa);
          const double err = nse(p.expected, y1);
          worst = std::max(worst, err);
          if (!(err < limit))
            pc::testing::fail(__FILE__, __LINE__, typeName(type) + " " + isaName(isa) + " " + std::to_string(rows) +
                                                      "x" + std::to_string(cols) + " tokens " +
                                                      std::to_string(n_tokens) + ": nse " + std::to_string(err));
          // Threads split rows, never a dot: two threads give the same bits as one.
          PC_CHECK(run(p, n_tokens, two, scratch, isa) == y1);
        }
      }
      std::printf("     %-4s %-6s worst nse %.2g\n", typeName(type).c_str(), isaName(isa), worst);
    }
  }
}

PC_TEST(matmul_token_rows_are_independent_of_the_batch) {
  // Token t's output is the same whether it is alone or in any tile position of a batch.
  const int64_t rows = 70, cols = 256, n_tokens = 19;
  for (Isa isa : testIsas()) {
    const GgmlType type = weightKernels(GgmlType::Q8_0, Isa::Scalar) ? GgmlType::Q8_0 : GgmlType::F32;
    const Product p = randomProduct(type, isa, rows, cols, n_tokens, 99);
    ThreadPool pool(2);
    MatmulScratch scratch;
    const std::vector<float> batch = run(p, n_tokens, pool, scratch, isa);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<float> alone(static_cast<size_t>(rows));
      matmul(p.w, &p.x[static_cast<size_t>(t * cols)], 1, alone.data(), pool, scratch, isa);
      for (int64_t r = 0; r < rows; ++r) {
        const double a = alone[static_cast<size_t>(r)], b = batch[static_cast<size_t>(t * rows + r)];
        PC_CHECK(std::abs(a - b) <= 1e-5 * (std::abs(a) + 1.0));
      }
    }
  }
}

PC_TEST(matmul_output_alignment_changes_nothing) {
  // Row blocks follow y's cache lines: any start of y gives the same bits.
  const GgmlType type = weightKernels(GgmlType::Q8_0, Isa::Scalar) ? GgmlType::Q8_0 : GgmlType::F32;
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (int64_t n_tokens : {1, 3}) {
    const Product p = randomProduct(type, detectIsa(), 37, 256, n_tokens, 5);
    const std::vector<float> aligned = run(p, n_tokens, pool, scratch, detectIsa());
    for (size_t offset = 1; offset < 16; ++offset) {
      std::vector<float> buffer(aligned.size() + 16, NAN);
      matmul(p.w, p.x.data(), n_tokens, buffer.data() + offset, pool, scratch, detectIsa());
      PC_CHECK(std::vector<float>(buffer.begin() + offset, buffer.begin() + offset + aligned.size()) == aligned);
    }
  }
}

PC_TEST(matmul_through_repacked_weights_matches_the_double_reference) {
  // Q4_0 and Q8_0 matrices whose rows come in groups of 8 are read through a copy repacked on first use.
  const std::pair<int64_t, int64_t> shapes[] = {{8, 1}, {72, 1}, {72, 3}, {136, 9}, {256, 64}};
  ThreadPool two(2);
  MatmulScratch scratch;
  uint64_t seed = 1000;
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    for (Isa isa : testIsas()) {
      for (auto [rows, n_tokens] : shapes) {
        Product p = randomProduct(type, isa, rows, 32 * 7, n_tokens, seed++);
        p.w.repack = std::make_shared<RepackOnFirstUse>(/*release_mapped_source=*/false);
        const std::vector<float> first = run(p, n_tokens, two, scratch, isa);
        PC_CHECK(nse(p.expected, first) < 1e-10);
        PC_CHECK_EQ(run(p, n_tokens, two, scratch, isa), first);  // the second product reuses the copy
      }
    }
  }
}

PC_TEST(matmul_rejects_unsupported_types_and_bad_shapes) {
  ThreadPool pool(1);
  MatmulScratch scratch;
  std::vector<float> x(512), y(64);
  std::vector<uint8_t> data(1 << 16);
  MatrixView w{GgmlType::Q2_K, 2, 256, data.data(), 84, nullptr};
  PC_CHECK_THROWS(matmul(w, x.data(), 1, y.data(), pool, scratch, detectIsa()), "no kernels");
  if (weightKernels(GgmlType::Q8_0, Isa::Scalar)) {
    w = {GgmlType::Q8_0, 2, 48, data.data(), 64, nullptr};  // 48 is not a multiple of 32
    PC_CHECK_THROWS(matmul(w, x.data(), 1, y.data(), pool, scratch, detectIsa()), "multiple of 32");
    w = {GgmlType::Q8_0, 2, 64, data.data(), 60, nullptr};  // a Q8_0 row of 64 takes 68 bytes
    PC_CHECK_THROWS(matmul(w, x.data(), 1, y.data(), pool, scratch, detectIsa()), "row_bytes");
    w = {GgmlType::Q8_0, 2, 64, data.data(), 68, nullptr};
    PC_CHECK_THROWS(matmul(w, x.data(), -1, y.data(), pool, scratch, detectIsa()), "negative");
    matmul(w, x.data(), 0, y.data(), pool, scratch, detectIsa());  // nothing to do
  }
}

}  // namespace
