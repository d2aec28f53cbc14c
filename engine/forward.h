// The llama forward pass on the CPU: token embedding, per layer RMSNorm -> Q/K/V -> RoPE at the tokens' original
// positions -> cache append -> causal attention over the layer's cache -> output projection -> residual ->
// RMSNorm -> SwiGLU feed-forward -> residual; then the final norm and the LM head. Tokens run in micro-batches of
// at most kMaxBatch, whose buffers are allocated once.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/kv/kv_cache.h"
#include "engine/llama_config.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"

namespace pc {

enum class LogitsWanted { Last, All };

class Forward {
 public:
  static constexpr int64_t kMaxBatch = 512;  // llama.cpp's default micro-batch: bounds the activation buffers

  Forward(const LlamaConfig& config, const ModelWeights& weights, cpu::ThreadPool& pool, cpu::Isa isa);

  // Runs n tokens at the given positions (ascending, after the cache's last position), appending their keys and
  // values to `cache`. Writes logits (vocab,) of the last token, or (n, vocab) for every token, into `logits`.
  // Returns false if `cancel` was raised; the cache then still ends at its state before the call.
  bool run(const TokenId* tokens, const int32_t* positions, int64_t n, KvCache& cache, LogitsWanted wanted,
           float* logits, const std::atomic<bool>* cancel = nullptr);

 private:
  void runBatch(const TokenId* tokens, const int32_t* positions, int64_t n, KvCache& cache, LogitsWanted wanted,
                float* logits);

  const LlamaConfig& config_;
  const ModelWeights& weights_;
  cpu::ThreadPool& pool_;
  cpu::Isa isa_;
  cpu::MatmulScratch matmul_scratch_;
  // Activations of one micro-batch, sized for kMaxBatch tokens.
  std::vector<float> x_;       // (n, dim) the residual stream
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
