// Repacked Q4_0 / Q8_0 groups: every ISA's repacked dot against the block32 scalar dot_rows on the original GGUF rows
// (the definition of the product), for group counts 1, 2 and 9, row lengths of 1, 7 and 64 blocks and every tile
// size 1..9 (8 + a remainder). Errors are normalized squared errors, sum((a - b)^2) / sum(a^2), threshold 1e-10 as in
// weight_kernels_test: the same integer dots and scales, only the order of the float sums differs.
//
// PC_REPACK_BENCH=1 adds single-thread timings on TinyLlama's ffn (5632 x 2048): count = 1 (decode, GB/s of weight
// bytes) and count = 8 (a prompt tile, GFLOP/s), repacked against weightKernels(type, isa)->dot_rows in one run.
#include "kernels/cpu/repacked.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/testing/check.h"
#include "kernels/cpu/random_weights.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc::cpu {
namespace {

constexpr GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q8_0};
constexpr int kMaxCount = 9;

std::vector<Isa> isas() {
  std::vector<Isa> out{Isa::Scalar};
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (isa <= detectIsa()) out.push_back(isa);
  }
  return out;
}

double normalizedSquaredError(const std::vector<float>& reference, const std::vector<float>& value) {
  double error = 0.0, norm = 0.0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double diff = static_cast<double>(reference[i]) - value[i];
    error += diff * diff;
    norm += static_cast<double>(reference[i]) * reference[i];
  }
  return norm > 0.0 ? error / norm : error;
}

MatrixView view(GgmlType type, int64_t rows, int64_t cols, const std::vector<uint8_t>& data) {
  return MatrixView{type, rows, cols, data.data(), weightRowBytes(type, cols), nullptr};
}

// `count` activation rows of n random floats, prepared as the block32 kernels prepare them. With `edge_rows`, rows
// 1, 4, 7 are tiny, so that their f16 scales are subnormal, and row 2 is zero (d = 0).
std::vector<uint8_t> preparedActivations(GgmlType type, int64_t n, int count, uint64_t seed, bool edge_rows) {
  const WeightKernels* kernels = weightKernels(type, Isa::Scalar);
  const size_t stride = activationRowBytes(kernels->activation_type, n);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  std::vector<uint8_t> out(stride * static_cast<size_t>(count));
  for (int t = 0; t < count; ++t) {
    const float magnitude = !edge_rows ? 1.0f : t % 3 == 1 ? 1e-4f : t == 2 ? 0.0f : 1.0f;
    for (float& v : x) v = magnitude * normal(rng);
    kernels->prepare_activation(x.data(), &out[t * stride], n);
  }
  return out;
}

// y[t * rows + r] for all groups, through the repacked kernel of `isa`.
void repackedProduct(const RepackedWeights& w, Isa isa, const std::vector<uint8_t>& activations, size_t stride,
                     int count, float* y) {
  const RepackedDotFn dot = repackedDot(w.type, isa);
  for (int64_t g = 0; g < w.rows / kRepackRows; ++g) {
    dot(w.cols, w.group(g), activations.data(), stride, count, y + g * kRepackRows, static_cast<size_t>(w.rows));
  }
}

PC_TEST(repack_accepts_q4_0_and_q8_0_in_whole_groups_and_blocks) {
  PC_CHECK(canRepack(GgmlType::Q4_0, 8, 32));
  PC_CHECK(canRepack(GgmlType::Q8_0, 5632, 2048));
  PC_CHECK(!canRepack(GgmlType::Q4_1, 8, 32));
  PC_CHECK(!canRepack(GgmlType::Q4_K, 8, 256));
  PC_CHECK(!canRepack(GgmlType::Q4_0, 12, 32));
  PC_CHECK(!canRepack(GgmlType::Q4_0, 8, 48));
  PC_CHECK(!canRepack(GgmlType::Q4_0, 0, 32));
  PC_CHECK(repackedDot(GgmlType::Q4_1, Isa::Avx512) == nullptr);
  const std::vector<uint8_t> data = randomWeightRows(GgmlType::Q4_0, 12, 32, 1);
  PC_CHECK_THROWS(repackWeights(view(GgmlType::Q4_0, 12, 32, data)), "cannot repack");
}

PC_TEST(repacked_groups_are_cache_line_aligned) {
  for (GgmlType type : kTypes) {
    const std::vector<uint8_t> data = randomWeightRows(type, 24, 32 * 7, 2);
    const RepackedWeights w = repackWeights(view(type, 24, 32 * 7, data));
    PC_CHECK_EQ(w.group_bytes % 64, size_t{0});
    for (int64_t g = 0; g < 3; ++g) PC_CHECK_EQ(reinterpret_cast<uintptr_t>(w.group(g)) % 64, uintptr_t{0});
  }
}

PC_TEST(repacked_dots_match_block32_dot_rows_on_every_isa) {
  double worst[2][3] = {};  // [Q4_0, Q8_0][isa]
  for (GgmlType type : kTypes) {
    const WeightKernels* reference = weightKernels(type, Isa::Scalar);
    for (int64_t rows : {8, 16, 72}) {
      for (int64_t cols : {32, 32 * 7, 32 * 64}) {
        const uint64_t seed = static_cast<uint64_t>(rows * 1000 + cols);
        const std::vector<uint8_t> data = randomWeightRows(type, rows, cols, seed);
        const MatrixView w = view(type, rows, cols, data);
        const RepackedWeights repacked = repackWeights(w);
        const size_t stride = activationRowBytes(reference->activation_type, cols);
        const std::vector<uint8_t> activations = preparedActivations(type, cols, kMaxCount, seed + 1, true);

        // expected[t * rows + r]: GGUF row r against activation row t.
        std::vector<float> expected(static_cast<size_t>(kMaxCount * rows));
        std::vector<float> column(kMaxCount);
        for (int64_t r = 0; r < rows; ++r) {
          reference->dot_rows(cols, static_cast<const uint8_t*>(w.data) + r * w.row_bytes, activations.data(),
                              stride, kMaxCount, column.data());
          for (int t = 0; t < kMaxCount; ++t) expected[t * rows + r] = column[t];
        }

        for (int count = 1; count <= kMaxCount; ++count) {
          std::vector<float> scalar;
          for (Isa isa : isas()) {
            std::vector<float> got(static_cast<size_t>(count * rows), std::numeric_limits<float>::quiet_NaN());
            repackedProduct(repacked, isa, activations, stride, count, got.data());
            // Per activation row, so that the tiny rows' errors are not drowned by the others' norms.
            for (int t = 0; t < count; ++t) {
              const auto slice = [&](const std::vector<float>& v) {
                return std::vector<float>(v.begin() + t * rows, v.begin() + (t + 1) * rows);
              };
              const double error = normalizedSquaredError(slice(expected), slice(got));
              if (!(error <= 1e-10)) {
                testing::fail(__FILE__, __LINE__,
                              ggmlTypeName(static_cast<uint32_t>(type)) + " " + isaName(isa) + " " +
                                  std::to_string(rows) + " x " + std::to_string(cols) + ", count " +
                                  std::to_string(count) + ", activation row " + std::to_string(t) + ": error " +
                                  std::to_string(error));
              }
              double& worst_here = worst[type == GgmlType::Q8_0][static_cast<int>(isa)];
              worst_here = std::max(worst_here, error);
              if (isa != Isa::Scalar) PC_CHECK(normalizedSquaredError(slice(scalar), slice(got)) <= 1e-10);
            }
            if (isa == Isa::Scalar) scalar = got;
          }
        }
      }
    }
  }
  for (GgmlType type : kTypes) {
    for (Isa isa : isas()) {
      std::printf("     %s %s worst error %.3g\n", ggmlTypeName(static_cast<uint32_t>(type)).c_str(), isaName(isa),
                  worst[type == GgmlType::Q8_0][static_cast<int>(isa)]);
    }
  }
}

// Median seconds of passes of `pass` over at least 0.5 s.
template <class Pass>
double medianSeconds(Pass pass) {
  std::vector<double> times;
  const auto begin = std::chrono::steady_clock::now();
  while (times.size() < 5 || std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() < 0.5) {
    const auto start = std::chrono::steady_clock::now();
    pass();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

PC_TEST(repacked_bench_when_PC_REPACK_BENCH_is_set) {
  const char* flag = std::getenv("PC_REPACK_BENCH");
  if (!flag || std::string(flag) != "1") return;
  constexpr int64_t kRows = 5632, kCols = 2048;
  for (GgmlType type : kTypes) {
    const std::vector<uint8_t> data = randomWeightRows(type, kRows, kCols, 7);
    const MatrixView w = view(type, kRows, kCols, data);
    RepackedWeights repacked;
    const double repack_seconds = medianSeconds([&] { repacked = repackWeights(w); });
    std::printf("bench %s repackWeights: %.3f ms\n", ggmlTypeName(static_cast<uint32_t>(type)).c_str(),
                repack_seconds * 1e3);
    for (Isa isa : isas()) {
      if (isa == Isa::Scalar) continue;
      const WeightKernels* kernels = weightKernels(type, isa);
      const size_t stride = activationRowBytes(kernels->activation_type, kCols);
      for (int count : {1, 8}) {
        const std::vector<uint8_t> activations = preparedActivations(type, kCols, count, 8, false);
        std::vector<float> y(static_cast<size_t>(kRows * count));
        const double rows_seconds = medianSeconds([&] {
          for (int64_t r = 0; r < kRows; ++r) {
            kernels->dot_rows(kCols, static_cast<const uint8_t*>(w.data) + r * w.row_bytes, activations.data(),
                              stride, count, &y[r * count]);
          }
        });
        const double repacked_seconds =
            medianSeconds([&] { repackedProduct(repacked, isa, activations, stride, count, y.data()); });
        for (const auto& [name, seconds] : {std::pair{"dot_rows", rows_seconds}, {"repacked", repacked_seconds}}) {
          std::printf("bench %s %-6s %-8s count %d: %7.3f ms  %6.2f GB/s  %7.2f GFLOP/s\n",
                      ggmlTypeName(static_cast<uint32_t>(type)).c_str(), isaName(isa), name, count, seconds * 1e3,
                      static_cast<double>(data.size()) / seconds * 1e-9,
                      2.0 * kRows * kCols * count / seconds * 1e-9);
        }
      }
    }
  }
}
}  // namespace
}  // namespace pc::cpu
