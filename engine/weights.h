// Views of a llama model's weights inside the mapped GGUF file: nothing is copied or converted at load time.
#pragma once

#include <vector>

#include "engine/gguf.h"
#include "engine/llama_config.h"
#include "kernels/cpu/matmul.h"

namespace pc {

struct LayerWeights {
  const float* attn_norm = nullptr;  // (dim,)
  cpu::MatrixView wq;                // (dim, dim)          rows = outputs
  cpu::MatrixView wk;                // (kv_dim, dim)
  cpu::MatrixView wv;                // (kv_dim, dim)
  cpu::MatrixView wo;                // (dim, dim)
  const float* ffn_norm = nullptr;   // (dim,)
  cpu::MatrixView w_gate;            // (ffn_dim, dim)
  cpu::MatrixView w_up;              // (ffn_dim, dim)
  cpu::MatrixView w_down;            // (dim, ffn_dim)
};

struct ModelWeights {
  cpu::MatrixView token_embedding;  // (vocab, dim): one row per token
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;  // (dim,)
  cpu::MatrixView output;              // (vocab, dim); token_embedding when the model ties them
};

// The file must already have passed readLlamaConfig (names, shapes and types are validated there).
ModelWeights viewWeights(const GgufFile& file, const LlamaConfig& config);

// Total bytes of the weight tensors (what the model costs in memory once every page has been touched).
uint64_t weightBytes(const GgufFile& file);

}  // namespace pc
