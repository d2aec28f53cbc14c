#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/repacked.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc::cpu {
namespace {

constexpr size_t kCacheLine = 64;
constexpr int64_t kRowAlign = kCacheLine / sizeof(float);  // 16 outputs to a cache line of y
constexpr int kTokenTile = 8;                              // activation rows per dot_rows call in prompt processing
constexpr size_t kWeightBlockBytes = 256 * 1024;           // weight rows kept in L2 while all token tiles pass
constexpr int64_t kMaxBlockRows = 64;
constexpr int kChunksPerThread = 8;   // work units per thread in decode: absorbs a thread that is briefly descheduled
constexpr int64_t kParallelPrepareRows = 8;  // below this, quantizing activations costs less than waking the pool

// Bytes of one weight row of `cols` elements, or 0 when the type has no kernels.
size_t weightRowBytes(GgmlType type, int64_t cols) {
  const auto n = static_cast<size_t>(cols);
  switch (type) {
    case GgmlType::F32: return n * sizeof(float);
    case GgmlType::F16:
    case GgmlType::BF16: return n * sizeof(uint16_t);
    case GgmlType::Q4_0: return n / kBlock32 * sizeof(BlockQ4_0);
    case GgmlType::Q4_1: return n / kBlock32 * sizeof(BlockQ4_1);
    case GgmlType::Q5_0: return n / kBlock32 * sizeof(BlockQ5_0);
    case GgmlType::Q5_1: return n / kBlock32 * sizeof(BlockQ5_1);
    case GgmlType::Q8_0: return n / kBlock32 * sizeof(BlockQ8_0);
    case GgmlType::Q4_K: return n / kBlockK * sizeof(BlockQ4_K);
    case GgmlType::Q5_K: return n / kBlockK * sizeof(BlockQ5_K);
    case GgmlType::Q6_K: return n / kBlockK * sizeof(BlockQ6_K);
    default: return 0;
  }
}

std::string typeLabel(GgmlType type) { return "ggml type " + std::to_string(static_cast<uint32_t>(type)); }

int64_t roundUp(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

const WeightKernels& checkedKernels(const MatrixView& w, const float* x, int64_t n_tokens, const float* y, Isa isa) {
  const WeightKernels* kernels = weightKernels(w.type, isa);
  if (!kernels) throw std::invalid_argument("matmul: no kernels for weight " + typeLabel(w.type));
  const std::string shape = " (" + typeLabel(w.type) + ", " + std::to_string(w.rows) + " x " +
                            std::to_string(w.cols) + ")";
  if (w.rows < 0 || w.cols <= 0 || w.cols % kernels->block_size != 0)
    throw std::invalid_argument("matmul: row length must be a positive multiple of " +
                                std::to_string(kernels->block_size) + shape);
  if (w.row_bytes < weightRowBytes(w.type, w.cols))
    throw std::invalid_argument("matmul: row_bytes " + std::to_string(w.row_bytes) + " is shorter than a row" + shape);
  if (n_tokens < 0) throw std::invalid_argument("matmul: negative token count" + shape);
  if (n_tokens > 0 && w.rows > 0 && (!w.data || !x || !y)) throw std::invalid_argument("matmul: null data" + shape);
  return *kernels;
}

// y (n_tokens, rows) from weights repacked in groups of 8 rows: each group meets all prepared activation rows in one
// call (the kernel tiles them), so a group is read from memory once and reused from L1 for every token tile.
// Threads take runs of groups from a shared counter; a run is 2 groups = 16 outputs = one cache line of y per token.
void productOfRepacked(const RepackedWeights& packed, RepackedDotFn dot, const uint8_t* act, size_t stride,
                       int64_t n_tokens, float* y, ThreadPool& pool) {
  const int64_t groups = packed.rows / kRepackRows;
  const int64_t per_run = n_tokens == 1 ? std::max<int64_t>(2, groups / (pool.size() * kChunksPerThread)) / 2 * 2 : 2;
  const int64_t runs = (groups + per_run - 1) / per_run;
  std::atomic<int64_t> next_run{0};
  pool.run([&](int, int) {
    for (int64_t run = next_run.fetch_add(1, std::memory_order_relaxed); run < runs;
         run = next_run.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t g1 = std::min(groups, (run + 1) * per_run);
      for (int64_t g = run * per_run; g < g1; ++g) {
        dot(packed.cols, packed.group(g), act, stride, static_cast<int>(n_tokens), y + g * kRepackRows,
            static_cast<size_t>(packed.rows));
      }
    }
  });
}

}  // namespace

void* MatmulScratch::reserve(size_t bytes) {
  // Over-allocate by a cache line so the prepared rows can start on one.
  if (bytes_.size() < bytes + kCacheLine) bytes_.resize(bytes + kCacheLine);
  const auto address = reinterpret_cast<uintptr_t>(bytes_.data());
  return bytes_.data() + (kCacheLine - address % kCacheLine) % kCacheLine;
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulScratch& scratch,
            Isa isa) {
  const WeightKernels& kernels = checkedKernels(w, x, n_tokens, y, isa);
  if (n_tokens == 0 || w.rows == 0) return;
  const int64_t rows = w.rows, cols = w.cols;
  const auto* weights = static_cast<const uint8_t*>(w.data);

  // act (n_tokens, stride bytes) = x prepared in the weight type's partner format, each row cache-line aligned.
  const size_t stride = static_cast<size_t>(
      roundUp(static_cast<int64_t>(activationRowBytes(kernels.activation_type, cols)), kCacheLine));
  auto* act = static_cast<uint8_t*>(scratch.reserve(stride * static_cast<size_t>(n_tokens)));
  const auto prepare = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) kernels.prepare_activation(x + t * cols, act + t * stride, cols);
  };
  if (n_tokens >= kParallelPrepareRows) {
    pool.parallelFor(n_tokens, prepare);
  } else {
    prepare(0, n_tokens);
  }

  if (w.repack) {
    if (RepackedDotFn dot = repackedDot(w.type, isa)) {
      productOfRepacked(w.repack->get(w), dot, act, stride, n_tokens, y, pool);
      return;
    }
  }

  // Threads take blocks of weight rows from a shared counter (a thread slowed by another process just takes fewer).
  // Block bounds fall on cache-line boundaries of y (of every token's row when rows is a multiple of 16), so two
  // threads never write one cache line: `shift` counts the floats y starts past a line boundary.
  const int64_t shift = static_cast<int64_t>(reinterpret_cast<uintptr_t>(y) % kCacheLine / sizeof(float));
  int64_t block_rows;
  if (n_tokens == 1) {
    // Decode streams each weight byte once: blocks only need to be small enough to balance the threads.
    block_rows = roundUp((rows + pool.size() * kChunksPerThread - 1) / (pool.size() * kChunksPerThread), kRowAlign);
  } else {
    // Prompt processing dots each weight row with every token: a block sized for L2 is read from memory once.
    const int64_t fit = static_cast<int64_t>(kWeightBlockBytes / w.row_bytes) / kRowAlign * kRowAlign;
    block_rows = std::clamp(fit, kRowAlign, kMaxBlockRows);
    // Small matrices: shrink blocks (not below 16 rows) until every thread has a few.
    while (block_rows > kRowAlign && (rows + block_rows - 1) / block_rows < 2 * pool.size()) block_rows -= kRowAlign;
  }
  const int64_t n_blocks = (rows + shift + block_rows - 1) / block_rows;
  std::atomic<int64_t> next_block{0};

  pool.run([&](int, int) {
    for (int64_t b = next_block.fetch_add(1, std::memory_order_relaxed); b < n_blocks;
         b = next_block.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t r0 = std::max<int64_t>(0, b * block_rows - shift);
      const int64_t r1 = std::min(rows, (b + 1) * block_rows - shift);
      if (n_tokens == 1) {
        // y (rows,): one token's outputs are contiguous, so each dot lands in place.
        for (int64_t r = r0; r < r1; ++r) kernels.dot_rows(cols, weights + r * w.row_bytes, act, stride, 1, y + r);
        continue;
      }
      // y (n_tokens, rows): each weight row of the block meets one tile of activation rows at a time, so the
      // kernel decodes a weight block once per tile; the block stays in L2 while all tiles pass over it.
      float tile_out[kTokenTile];
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
        const int count = static_cast<int>(std::min<int64_t>(kTokenTile, n_tokens - t0));
        for (int64_t r = r0; r < r1; ++r) {
          kernels.dot_rows(cols, weights + r * w.row_bytes, act + t0 * stride, stride, count, tile_out);
          for (int j = 0; j < count; ++j) y[(t0 + j) * rows + r] = tile_out[j];
        }
      }
    }
  });
}

}  // namespace pc::cpu
