#include "engine/forward.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/weight_kernels.h"

namespace pc {
namespace {

// Below this many tokens the per-token element-wise work (norms, residual adds, RoPE, SwiGLU: microseconds per token)
// costs less than a pool handoff, so decode runs it on the caller.
constexpr int64_t kParallelRowsFrom = 8;

}  // namespace

Forward::Forward(const LlamaConfig& config, const ModelWeights& weights, cpu::ThreadPool& pool, cpu::Isa isa)
    : config_(config), weights_(weights), pool_(pool), isa_(isa) {
  const size_t batch = static_cast<size_t>(kMaxBatch);
  const size_t dim = static_cast<size_t>(config.dim);
  const size_t kv_dim = static_cast<size_t>(config.n_kv_heads * config.head_dim);
  const size_t ffn = static_cast<size_t>(config.ffn_dim);
  x_.resize(batch * dim);
  xb_.resize(batch * dim);
  q_.resize(batch * dim);
  k_.resize(batch * kv_dim);
  v_.resize(batch * kv_dim);
  att_.resize(batch * dim);
  proj_.resize(batch * dim);
  gate_.resize(batch * ffn);
  up_.resize(batch * ffn);
}

bool Forward::run(const TokenId* tokens, const int32_t* positions, int64_t n, KvCache& cache, LogitsWanted wanted,
                  float* logits, const std::atomic<bool>* cancel) {
  const int64_t vocab = config_.vocab_size;
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      throw std::out_of_range("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                              std::to_string(vocab - 1) + ")");
  }
  for (int64_t start = 0; start < n; start += kMaxBatch) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      if (n > 0) cache.truncateFrom(positions[0]);
      return false;
    }
    const int64_t count = std::min(kMaxBatch, n - start);
    const bool last_batch = start + count == n;
    // Logits of every token go to their rows; for the last token only the final batch writes.
    if (wanted == LogitsWanted::All) {
      runBatch(tokens + start, positions + start, count, cache, wanted, logits + start * vocab);
    } else {
      runBatch(tokens + start, positions + start, count, cache, wanted, last_batch ? logits : nullptr);
    }
  }
  return true;
}

void Forward::runBatch(const TokenId* tokens, const int32_t* positions, int64_t n, KvCache& cache,
                       LogitsWanted wanted, float* logits) {
  const LlamaConfig& c = config_;
  const int64_t dim = c.dim, kv_dim = c.n_kv_heads * c.head_dim, ffn = c.ffn_dim;
  const float eps = static_cast<float>(c.rms_eps);
  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};

  // x (n, dim) = token_embedding[tokens]
  const cpu::WeightKernels* embedding = cpu::weightKernels(weights_.token_embedding.type, isa_);
  for (int64_t i = 0; i < n; ++i) {
    const auto* row = static_cast<const uint8_t*>(weights_.token_embedding.data) +
                      static_cast<size_t>(tokens[i]) * weights_.token_embedding.row_bytes;
    embedding->dequantize_row(row, &x_[static_cast<size_t>(i * dim)], dim);
  }

  // Runs body(i) for every token i < n, split over the pool in prompt processing.
  const auto forTokens = [&](auto body) {
    const auto rows = [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) body(i);
    };
    if (n >= kParallelRowsFrom) {
      pool_.parallelFor(n, rows);
    } else {
      rows(0, n);
    }
  };
  // x (n, dim) += proj, then xb (n, dim) = rmsnorm(x) * norm: one pass per token while its row is in L1.
  const auto addThenNorm = [&](const float* proj, const float* norm) {
    forTokens([&](int64_t i) {
      float* row = &x_[i * dim];
      if (proj) {
        for (int64_t d = 0; d < dim; ++d) row[d] += proj[i * dim + d];
      }
      cpu::rmsNorm(row, norm, &xb_[i * dim], dim, eps);
    });
  };

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
    KvLayer& kv = cache.layer(l);

    // x += the previous layer's feed-forward output (none before layer 0); xb (n, dim) = rmsnorm(x) * attn_norm
    addThenNorm(l > 0 ? proj_.data() : nullptr, w.attn_norm);
    // q (n, dim) = xb @ wq^T;  k, v (n, kv_dim) = xb @ wk^T, xb @ wv^T
    cpu::matmul(w.wq, xb_.data(), n, q_.data(), pool_, matmul_scratch_, isa_);
    cpu::matmul(w.wk, xb_.data(), n, k_.data(), pool_, matmul_scratch_, isa_);
    cpu::matmul(w.wv, xb_.data(), n, v_.data(), pool_, matmul_scratch_, isa_);
    // RoPE at each token's original position: q over n_heads heads, k over n_kv_heads heads.
    const auto freq_base = static_cast<float>(c.rope_freq_base);
    forTokens([&](int64_t i) {
      cpu::ropeAdjacentPairs(&q_[i * dim], c.n_heads, c.head_dim, c.rope_dim, positions[i], freq_base);
      cpu::ropeAdjacentPairs(&k_[i * kv_dim], c.n_kv_heads, c.head_dim, c.rope_dim, positions[i], freq_base);
    });
    kv.append(k_.data(), v_.data(), positions, n);
    // att (n, dim) = softmax(q k^T / sqrt(head_dim), causal by position) v   over the layer's whole cache
    cpu::attention(q_.data(), positions, n, kv.keys(), kv.values(), kv.positions(), kv.length(), shape, att_.data(),
                   pool_, isa_);
    // proj (n, dim) = att @ wo^T;  x += proj, xb (n, dim) = rmsnorm(x) * ffn_norm
    cpu::matmul(w.wo, att_.data(), n, proj_.data(), pool_, matmul_scratch_, isa_);
    addThenNorm(proj_.data(), w.ffn_norm);
    // gate, up (n, ffn) = xb @ w_gate^T, xb @ w_up^T;  gate = silu(gate) * up
    cpu::matmul(w.w_gate, xb_.data(), n, gate_.data(), pool_, matmul_scratch_, isa_);
    cpu::matmul(w.w_up, xb_.data(), n, up_.data(), pool_, matmul_scratch_, isa_);
    forTokens([&](int64_t i) { cpu::swiglu(&gate_[i * ffn], &up_[i * ffn], &gate_[i * ffn], ffn); });
    // proj (n, dim) = gate @ w_down^T, added to x by the next layer's addThenNorm (after the last layer, below)
    cpu::matmul(w.w_down, gate_.data(), n, proj_.data(), pool_, matmul_scratch_, isa_);
  }

  if (!logits) return;
  // Only the rows whose logits are wanted take the last layer's residual add, the final norm and the LM head:
  // xb (rows, dim) = rmsnorm(x + proj) * output_norm over those rows.
  const int64_t first = wanted == LogitsWanted::All ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t i = 0; i < rows; ++i) {
    float* row = &x_[(first + i) * dim];
    if (c.n_layers > 0) {
      for (int64_t d = 0; d < dim; ++d) row[d] += proj_[(first + i) * dim + d];
    }
    cpu::rmsNorm(row, weights_.output_norm, &xb_[i * dim], dim, eps);
  }
  // logits (rows, vocab) = xb @ output^T
  cpu::matmul(weights_.output, xb_.data(), rows, logits, pool_, matmul_scratch_, isa_);
}

}  // namespace pc
