// The llama forward pass on the CPU: token embedding, per layer RMSNorm -> Q/K/V -> RoPE at the tokens' original
// positions -> cache append -> causal attention over the layer's cache -> output projection -> residual ->
// RMSNorm -> SwiGLU feed-forward -> residual; then the final norm and the LM head.
//
// It runs layer by layer over the whole stream of tokens, so that a KV policy can drop tokens from the stream
// between layers (PyramidInfer's prefill: deeper layers compute fewer tokens). Within a layer the stream runs in
// chunks of at most kMaxBatch tokens, whose temporaries are allocated once; only the residual stream is sized by
// the prompt.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/kv/kv_cache.h"
#include "engine/kv/kv_compressor.h"
#include "engine/llama_config.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"

namespace pc {

enum class LogitsWanted { Last, All };

class Forward {
 public:
  static constexpr int64_t kMaxBatch = 512;  // llama.cpp's default micro-batch: bounds the activation buffers

  Forward(const LlamaConfig& config, const ModelWeights& weights, cpu::ThreadPool& pool, cpu::Isa isa);

  // Runs n tokens at the given positions (ascending, after the cache's last position), appending their keys and
  // values to `cache`. Writes logits (vocab,) of the last token, or (n, vocab) for every token, into `logits`.
  // `policy` (may be null: keep everything) scores rows and may drop tokens from the stream between layers; it
  // never drops the last token, and every token must survive when all logits are wanted.
  // Returns false if `cancel` was raised; the cache then holds no row of these tokens.
  bool run(const TokenId* tokens, const int32_t* positions, int64_t n, KvCache& cache, LogitsWanted wanted,
           float* logits, const std::atomic<bool>* cancel = nullptr, KvCompressor* policy = nullptr);

 private:
  // Layer l for stream rows [first, first + count) of x_, whose keys and values join the layer's cache.
  void layerChunk(int64_t l, int64_t first, int64_t count, KvLayer& kv, cpu::RecentScores* scores);
  // Drops the stream tokens not in `keep` (ascending stream indices) from x_ and the stream's bookkeeping.
  void compactStream(const std::vector<int64_t>& keep);

  const LlamaConfig& config_;
  const ModelWeights& weights_;
  cpu::ThreadPool& pool_;
  cpu::Isa isa_;
  cpu::MatmulScratch matmul_scratch_;
  // The stream: tokens still computed, with their original positions.
  std::vector<float> x_;                 // (stream, dim) the residual stream
  std::vector<int32_t> stream_positions_;
  std::vector<int64_t> survivors_;
  // Temporaries of one chunk, sized for kMaxBatch tokens.
  std::vector<float> xb_;      // (n, dim) normed input of a block
  std::vector<float> q_;       // (n, dim)
  std::vector<float> k_;       // (n, kv_dim)
  std::vector<float> v_;       // (n, kv_dim)
  std::vector<float> att_;     // (n, dim) attention output before wo
  std::vector<float> proj_;    // (n, dim) a block's output before the residual add
  std::vector<float> gate_;    // (n, ffn_dim)
  std::vector<float> up_;      // (n, ffn_dim)
};

}  // namespace pc
