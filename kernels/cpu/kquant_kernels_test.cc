// K-quant kernels: hand-packed golden blocks (packed here the way ggml's quantizers pack them, decoded values worked
// out independently), golden Q8_K activation rows, and every ISA the machine has against the scalar reference on
// random blocks. PC_KQUANT_BENCH=1 adds single-thread throughput on a 5632x2048 matrix (run it filtered:
// `PC_KQUANT_BENCH=1 kquant_kernels_test throughput`).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

#include "engine/testing/check.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kquant_kernels.h"
#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {
namespace {

std::vector<Isa> machineIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (isa <= detectIsa()) isas.push_back(isa);
  }
  return isas;
}

const WeightKernels& kernels(GgmlType type, Isa isa) {
  const WeightKernels* k = kquantWeightKernels(type, isa);
  PC_CHECK(k != nullptr);
  return *k;
}

// ---- packing, as ggml's quantize_row_q{4,5,6}_K write it ----

void packScalesMins(const int scale[8], const int min[8], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = static_cast<uint8_t>(scale[j]);
      out[j + 4] = static_cast<uint8_t>(min[j]);
    } else {
      out[j + 4] = static_cast<uint8_t>((scale[j] & 0x0f) | ((min[j] & 0x0f) << 4));
      out[j - 4] |= static_cast<uint8_t>((scale[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((min[j] >> 4) << 6);
    }
  }
}

// q[e] in 0..15 (Q4_K) or 0..31 (Q5_K, fifth bits into qh).
template <class Block>
void packQuants(const int q[kBlockK], Block* block) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int low = q[64 * c + l], high = q[64 * c + 32 + l];
      block->qs[32 * c + l] = static_cast<uint8_t>((low & 0x0f) | ((high & 0x0f) << 4));
      if constexpr (std::is_same_v<Block, BlockQ5_K>) {
        if (c == 0) block->qh[l] = 0;
        block->qh[l] |= static_cast<uint8_t>(((low >> 4) << (2 * c)) | ((high >> 4) << (2 * c + 1)));
      }
    }
  }
}

// q[e] in 0..63 (the stored value, offset +32 included).
void packQ6(const int q[kBlockK], BlockQ6_K* block) {
  for (int half = 0; half < 2; ++half) {
    const int* L = q + 128 * half;
    uint8_t* ql = block->ql + 64 * half;
    uint8_t* qh = block->qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((L[l] & 0x0f) | ((L[l + 64] & 0x0f) << 4));
      ql[l + 32] = static_cast<uint8_t>((L[l + 32] & 0x0f) | ((L[l + 96] & 0x0f) << 4));
      qh[l] = static_cast<uint8_t>((L[l] >> 4) | ((L[l + 32] >> 4) << 2) | ((L[l + 64] >> 4) << 4) |
                                   ((L[l + 96] >> 4) << 6));
    }
  }
}

// ---- golden blocks: every value exact in float, so decoding must match to the bit ----

constexpr int kScales[8] = {1, 17, 33, 63, 5, 40, 62, 9};  // >= 16 at j >= 4 exercises the split top bits
constexpr int kMins[8] = {0, 63, 2, 31, 48, 7, 60, 33};
constexpr int kScalesQ6[16] = {-128, 127, -1, 0, 1, 64, -64, 33, -33, 100, -100, 7, 8, -9, 50, -50};
constexpr float kD = 0.5f, kDmin = 0.25f, kDQ6 = 0.125f;

template <class Block>
Block goldenQ4K(int levels, std::vector<double>* values) {
  Block block;
  block.d = f32ToF16(kD);
  block.dmin = f32ToF16(kDmin);
  packScalesMins(kScales, kMins, block.scales);
  int q[kBlockK];
  values->resize(kBlockK);
  for (int e = 0; e < kBlockK; ++e) {
    q[e] = (7 * e + 3) % levels;
    (*values)[e] = double(kD) * kScales[e / 32] * q[e] - double(kDmin) * kMins[e / 32];
  }
  packQuants(q, &block);
  return block;
}

BlockQ6_K goldenQ6K(std::vector<double>* values) {
  BlockQ6_K block;
  block.d = f32ToF16(kDQ6);
  for (int s = 0; s < 16; ++s) block.scales[s] = static_cast<int8_t>(kScalesQ6[s]);
  int q[kBlockK];
  values->resize(kBlockK);
  for (int e = 0; e < kBlockK; ++e) {
    q[e] = (5 * e + 1) % 64;
    (*values)[e] = double(kDQ6) * kScalesQ6[e / 16] * (q[e] - 32);
  }
  packQ6(q, &block);
  return block;
}

// A Q8_K block written by hand: dy = 0.25, qs covering -127..127.
BlockQ8_K goldenActivation(std::vector<double>* values) {
  BlockQ8_K a;
  a.d = 0.25f;
  values->resize(kBlockK);
  for (int e = 0; e < kBlockK; ++e) {
    a.qs[e] = static_cast<int8_t>((e * 13) % 255 - 127);
    (*values)[e] = 0.25 * a.qs[e];
  }
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += a.qs[16 * g + i];
    a.bsums[g] = static_cast<int16_t>(sum);
  }
  return a;
}

template <class Block>
void checkGolden(GgmlType type, const Block& block, const std::vector<double>& expected) {
  std::vector<double> activation;
  const BlockQ8_K a = goldenActivation(&activation);
  double dot = 0, magnitude = 0;
  for (int e = 0; e < kBlockK; ++e) {
    dot += expected[e] * activation[e];
    magnitude += std::fabs(expected[e] * activation[e]);
  }
  for (Isa isa : machineIsas()) {
    const WeightKernels& k = kernels(type, isa);
    float decoded[kBlockK];
    k.dequantize_row(&block, decoded, kBlockK);
    for (int e = 0; e < kBlockK; ++e) PC_CHECK_EQ(decoded[e], static_cast<float>(expected[e]));
    float got = 0;
    k.dot_rows(kBlockK, &block, &a, sizeof a, 1, &got);
    if (std::fabs(got - dot) > 1e-6 * magnitude) {
      ::pc::testing::fail(__FILE__, __LINE__,
                          std::string(isaName(isa)) + " dot " + std::to_string(got) + " vs " + std::to_string(dot));
    }
  }
}

PC_TEST(q4kGoldenBlock) {
  std::vector<double> expected;
  const BlockQ4_K block = goldenQ4K<BlockQ4_K>(16, &expected);
  PC_CHECK_EQ(expected[32 * 3 + 1], 0.5 * 63 * 10 - 0.25 * 31);  // element 97: q = (7*97+3) % 16 = 10, sub-block 3
  checkGolden(GgmlType::Q4_K, block, expected);
}

PC_TEST(q5kGoldenBlock) {
  std::vector<double> expected;
  const BlockQ5_K block = goldenQ4K<BlockQ5_K>(32, &expected);
  PC_CHECK_EQ(expected[255], 0.5 * 9 * 28 - 0.25 * 33);  // q = (7*255+3) % 32 = 28: fifth bit set
  checkGolden(GgmlType::Q5_K, block, expected);
}

PC_TEST(q6kGoldenBlock) {
  std::vector<double> expected;
  const BlockQ6_K block = goldenQ6K(&expected);
  PC_CHECK_EQ(expected[200], 0.125 * 8 * 9);  // sub-block 12 (scale 8), stored q = (5*200+1) % 64 = 41
  checkGolden(GgmlType::Q6_K, block, expected);
}

// Each of the 96 bits of the packed scales, flipped alone in the golden block, must change every ISA's decode and
// dot exactly as it changes the reference's (the SIMD kernels unpack the scales word-wide, the reference byte-wise).
template <class Block>
void checkEveryScaleBit(GgmlType type, int levels) {
  std::vector<double> unused, activation;
  const BlockQ8_K a = goldenActivation(&activation);
  const WeightKernels& reference = kernels(type, Isa::Scalar);
  for (int bit = 0; bit < 96; ++bit) {
    Block block = goldenQ4K<Block>(levels, &unused);
    block.scales[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    float want[kBlockK], got[kBlockK], want_dot, got_dot;
    reference.dequantize_row(&block, want, kBlockK);
    reference.dot_rows(kBlockK, &block, &a, sizeof a, 1, &want_dot);
    double magnitude = 0;
    for (int e = 0; e < kBlockK; ++e) magnitude += std::fabs(want[e] * activation[e]);
    for (Isa isa : machineIsas()) {
      kernels(type, isa).dequantize_row(&block, got, kBlockK);
      PC_CHECK(std::memcmp(want, got, sizeof want) == 0);
      kernels(type, isa).dot_rows(kBlockK, &block, &a, sizeof a, 1, &got_dot);
      PC_CHECK(std::fabs(got_dot - want_dot) <= 1e-6 * magnitude);
    }
  }
}

PC_TEST(q4kEveryScaleBit) { checkEveryScaleBit<BlockQ4_K>(GgmlType::Q4_K, 16); }
PC_TEST(q5kEveryScaleBit) { checkEveryScaleBit<BlockQ5_K>(GgmlType::Q5_K, 32); }

// Three blocks: the positive +127 comes before the -127 (so max = +127, iscale = -1, d = -1, signs flip); all
// zeros; and a leading -127 (iscale = 1). Ties round to even.
PC_TEST(q8kGoldenQuantization) {
  std::vector<float> x(3 * kBlockK);
  std::vector<int> expected(3 * kBlockK);
  for (int i = 0; i < kBlockK; ++i) {
    const int k = i % 50 - 25;
    x[i] = k + 0.3f;
    expected[i] = -k;
    x[2 * kBlockK + i] = k + 0.3f;
    expected[2 * kBlockK + i] = k;
  }
  x[5] = 127, expected[5] = -127;
  x[9] = -127, expected[9] = 127;
  x[20] = 2.5f, expected[20] = -2;
  x[21] = 3.5f, expected[21] = -4;
  x[22] = -2.5f, expected[22] = 2;
  x[2 * kBlockK] = -127, expected[2 * kBlockK] = -127;
  const float expected_d[3] = {-1.f, 0.f, 1.f};

  for (Isa isa : machineIsas()) {
    BlockQ8_K blocks[3];
    std::memset(blocks, 0x5a, sizeof blocks);
    kernels(GgmlType::Q4_K, isa).prepare_activation(x.data(), blocks, 3 * kBlockK);
    for (int b = 0; b < 3; ++b) {
      PC_CHECK_EQ(blocks[b].d, expected_d[b]);
      for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) {
          PC_CHECK_EQ(int(blocks[b].qs[16 * g + i]), expected[b * kBlockK + 16 * g + i]);
          sum += expected[b * kBlockK + 16 * g + i];
        }
        PC_CHECK_EQ(int(blocks[b].bsums[g]), sum);
      }
    }
  }
}

// ---- every ISA against the scalar reference on random data ----

std::vector<uint8_t> randomWeights(GgmlType type, int64_t blocks, std::mt19937& rng) {
  std::uniform_real_distribution<float> scale(1e-3f, 2e-2f);
  const size_t block_bytes = type == GgmlType::Q4_K ? sizeof(BlockQ4_K)
                             : type == GgmlType::Q5_K ? sizeof(BlockQ5_K) : sizeof(BlockQ6_K);
  std::vector<uint8_t> row(blocks * block_bytes);
  for (uint8_t& byte : row) byte = static_cast<uint8_t>(rng());
  // Random bytes are valid quants and scales; only the f16 scales must be sane numbers.
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* block = row.data() + b * block_bytes;
    if (type == GgmlType::Q6_K) {
      reinterpret_cast<BlockQ6_K*>(block)->d = f32ToF16(scale(rng));
    } else {
      reinterpret_cast<BlockQ4_K*>(block)->d = f32ToF16(scale(rng));  // Q5_K starts the same way
      reinterpret_cast<BlockQ4_K*>(block)->dmin = f32ToF16(scale(rng));
    }
  }
  return row;
}

double normalizedSquaredError(const float* want, const float* got, int n) {
  double err = 0, norm = 0;
  for (int i = 0; i < n; ++i) {
    err += double(want[i] - got[i]) * (want[i] - got[i]);
    norm += double(want[i]) * want[i];
  }
  return err / norm;
}

PC_TEST(simdMatchesReference) {
  constexpr int kMaxCount = 9;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const WeightKernels& reference = kernels(type, Isa::Scalar);
    double worst[3] = {0, 0, 0};  // per ISA
    for (int64_t blocks : {1, 3, 11}) {
      const int64_t n = blocks * kBlockK;
      const std::vector<uint8_t> weights = randomWeights(type, blocks, rng);
      std::vector<float> x(kMaxCount * n);
      for (float& v : x) v = normal(rng);
      // Padding between activation rows checks that the stride is honoured.
      const size_t stride = n / kBlockK * sizeof(BlockQ8_K) + 64;
      std::vector<uint8_t> want_rows(kMaxCount * stride), got_rows(kMaxCount * stride);
      for (int r = 0; r < kMaxCount; ++r) reference.prepare_activation(&x[r * n], &want_rows[r * stride], n);
      for (Isa isa : machineIsas()) {
        const WeightKernels& k = kernels(type, isa);
        for (int r = 0; r < kMaxCount; ++r) {
          k.prepare_activation(&x[r * n], &got_rows[r * stride], n);
          PC_CHECK(std::memcmp(&want_rows[r * stride], &got_rows[r * stride], stride - 64) == 0);
        }
        for (int count = 1; count <= kMaxCount; ++count) {
          float want[kMaxCount], got[kMaxCount];
          std::fill(std::begin(got), std::end(got), NAN);  // a row the kernel skips must not pass
          reference.dot_rows(n, weights.data(), want_rows.data(), stride, count, want);
          k.dot_rows(n, weights.data(), got_rows.data(), stride, count, got);
          const double nse = normalizedSquaredError(want, got, count);
          worst[int(isa)] = std::max(worst[int(isa)], nse);
          if (!(nse < 1e-10)) {
            ::pc::testing::fail(__FILE__, __LINE__,
                                std::string(ggmlTypeName(uint32_t(type))) + " " + isaName(isa) + " blocks " +
                                    std::to_string(blocks) + " count " + std::to_string(count) + " nse " +
                                    std::to_string(nse));
          }
        }
      }
    }
    for (Isa isa : machineIsas()) {
      std::printf("     %s %-6s vs scalar: max normalized squared error %.1e\n", ggmlTypeName(uint32_t(type)).c_str(),
                  isaName(isa), worst[int(isa)]);
    }
  }
}

// The reference dot against double arithmetic on the dequantized weights and activations.
PC_TEST(referenceDotMatchesDequantizedDot) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    constexpr int64_t kBlocks = 8, n = kBlocks * kBlockK;
    const WeightKernels& reference = kernels(type, Isa::Scalar);
    const std::vector<uint8_t> weights = randomWeights(type, kBlocks, rng);
    std::vector<float> w(n), x(n);
    reference.dequantize_row(weights.data(), w.data(), n);
    for (float& v : x) v = normal(rng);
    std::vector<BlockQ8_K> a(kBlocks);
    reference.prepare_activation(x.data(), a.data(), n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += double(w[i]) * a[i / kBlockK].d * a[i / kBlockK].qs[i % kBlockK];
    float got = 0;
    reference.dot_rows(n, weights.data(), a.data(), sizeof(BlockQ8_K) * kBlocks, 1, &got);
    const float want_f = static_cast<float>(want);
    PC_CHECK(normalizedSquaredError(&want_f, &got, 1) < 1e-10);
  }
}

// ---- throughput (PC_KQUANT_BENCH=1) ----

PC_TEST(throughput) {
  if (!std::getenv("PC_KQUANT_BENCH")) return;
  constexpr int64_t kRows = 5632, kCols = 2048, kBlocks = kCols / kBlockK;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(8 * kCols);
  for (float& v : x) v = normal(rng);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::vector<uint8_t> weights = randomWeights(type, kRows * kBlocks, rng);
    const size_t row_bytes = weights.size() / kRows;
    const size_t stride = kBlocks * sizeof(BlockQ8_K);
    std::vector<uint8_t> rows(8 * stride);
    std::vector<float> out(8 * kRows);
    for (Isa isa : machineIsas()) {
      const WeightKernels& k = kernels(type, isa);
      for (int r = 0; r < 8; ++r) k.prepare_activation(&x[r * kCols], &rows[r * stride], kCols);
      for (int count : {1, 8}) {
        const auto pass = [&] {
          for (int64_t row = 0; row < kRows; ++row) {
            k.dot_rows(kCols, weights.data() + row * row_bytes, rows.data(), stride, count, &out[row * count]);
          }
        };
        // The fastest of many passes: on a shared machine the slow ones measure the neighbours.
        pass();  // warm caches
        double best = 1e9, total = 0;
        while (total < 1.0) {
          const auto start = std::chrono::steady_clock::now();
          pass();
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          best = std::min(best, seconds);
          total += seconds;
        }
        std::printf("     %s %-6s count %d: %6.2f GB/s of weights, %7.2f ms per pass\n",
                    ggmlTypeName(uint32_t(type)).c_str(), isaName(isa), count, weights.size() / best / 1e9, 1e3 * best);
      }
    }
  }
}

}  // namespace
}  // namespace pc::cpu
