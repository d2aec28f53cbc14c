// Matrix products of GGUF weights with float activations: the activations are prepared once per product (quantized
// to the weight type's partner format), then threads split the weight rows; with several activation rows (prompt
// processing) each weight row is dotted with a tile of activation rows, so it is decoded once per tile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/ggml_type.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/thread_pool.h"

namespace pc::cpu {

class RepackOnFirstUse;  // repacked.h

// A weight matrix as stored in GGUF: `rows` rows of `cols` elements each, `row_bytes` apart.
struct MatrixView {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  size_t row_bytes = 0;
  // Set for matrices that products read through a repacked copy (repacked.h); null: the rows as stored.
  std::shared_ptr<RepackOnFirstUse> repack;
};

// Prepared-activation storage reused across products: grows to the largest product, then never allocates.
class MatmulScratch {
 public:
  void* reserve(size_t bytes);

 private:
  std::vector<uint8_t> bytes_;
};

// y (n_tokens, w.rows) = x (n_tokens, w.cols) @ w^T, all row-major. Throws std::invalid_argument for a weight type
// without kernels. Uses the kernels of `isa` (normally detectIsa()).
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulScratch& scratch,
            Isa isa);

}  // namespace pc::cpu
