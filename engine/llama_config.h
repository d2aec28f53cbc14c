// The llama architecture's hyper-parameters read from GGUF metadata, and the validation that the tensor table is
// a complete llama model the engine can run: every required key and tensor present, every shape agreeing with the
// metadata, every weight of a type the kernels support (else an error naming the tensor and its type).
#pragma once

#include <cstdint>
#include <string>

#include "engine/gguf.h"

namespace pc {

struct LlamaConfig {
  std::string name;            // general.name, or the file name when absent
  int64_t context_length = 0;  // llama.context_length
  int64_t dim = 0;             // llama.embedding_length
  int64_t n_layers = 0;        // llama.block_count
  int64_t ffn_dim = 0;         // llama.feed_forward_length
  int64_t n_heads = 0;         // llama.attention.head_count
  int64_t n_kv_heads = 0;      // llama.attention.head_count_kv (defaults to n_heads)
  int64_t head_dim = 0;        // dim / n_heads
  int64_t rope_dim = 0;        // llama.rope.dimension_count (defaults to head_dim)
  double rope_freq_base = 10000.0;
  double rms_eps = 1e-5;
  int64_t vocab_size = 0;      // rows of token_embd
  bool tied_output = false;    // output.weight absent: the LM head reuses token_embd
};

// Throws GgufError with a message naming the missing key/tensor, the disagreeing shape, or the unsupported type.
LlamaConfig readLlamaConfig(const GgufFile& file);

}  // namespace pc
