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
                  float* logits, const std::atomic<bool>* cancel, KvCompressor* policy) {
  const LlamaConfig& c = config_;
  const int64_t vocab = c.vocab_size, dim = c.dim;
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      throw std::out_of_range("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                              std::to_string(vocab - 1) + ")");
  }
  if (n == 0) return true;

  // x (n, dim) = token_embedding[tokens]
  x_.resize(static_cast<size_t>(n * dim));
  stream_positions_.assign(positions, positions + n);
  const cpu::WeightKernels* embedding = cpu::weightKernels(weights_.token_embedding.type, isa_);
  for (int64_t i = 0; i < n; ++i) {
    const auto* row = static_cast<const uint8_t*>(weights_.token_embedding.data) +
                      static_cast<size_t>(tokens[i]) * weights_.token_embedding.row_bytes;
    embedding->dequantize_row(row, &x_[static_cast<size_t>(i * dim)], dim);
  }

  for (int64_t l = 0; l < c.n_layers; ++l) {
    KvLayer& kv = cache.layer(l);
    const auto stream = static_cast<int64_t>(stream_positions_.size());
    int64_t first_query = 0;
    const float* weights = nullptr;
    const bool scoring = policy && policy->scoring(l, stream, &first_query, &weights);
    for (int64_t start = 0; start < stream; start += kMaxBatch) {
      if (cancel && cancel->load(std::memory_order_relaxed)) {
        cache.truncateFrom(positions[0]);
        return false;
      }
      const int64_t count = std::min(kMaxBatch, stream - start);
      // The chunk's share of the scored queries [first_query, stream).
      cpu::RecentScores scores;
      scores.first_query = std::clamp<int64_t>(first_query - start, 0, count);
      scores.query_weight = weights + std::max<int64_t>(0, start - first_query);
      layerChunk(l, start, count, kv, scoring ? &scores : nullptr);
    }
    if (policy && l + 1 < c.n_layers) {
      policy->survivors(l, kv, stream, &survivors_);
      if (!survivors_.empty()) {
        if (wanted == LogitsWanted::All || survivors_.back() != stream - 1)
          throw std::logic_error("a KV policy dropped a token whose logits are wanted");
        compactStream(survivors_);
      }
    }
  }

  if (!logits) return true;
  // The wanted rows take the final norm and the LM head, chunk by chunk:
  // xb (rows, dim) = rmsnorm(x) * output_norm;  logits (rows, vocab) = xb @ output^T
  const auto stream = static_cast<int64_t>(stream_positions_.size());
  const int64_t first = wanted == LogitsWanted::All ? 0 : stream - 1;
  const float eps = static_cast<float>(c.rms_eps);
  for (int64_t start = first; start < stream; start += kMaxBatch) {
    const int64_t rows = std::min(kMaxBatch, stream - start);
    for (int64_t i = 0; i < rows; ++i) {
      cpu::rmsNorm(&x_[static_cast<size_t>((start + i) * dim)], weights_.output_norm, &xb_[static_cast<size_t>(i * dim)], dim, eps);
    }
    cpu::matmul(weights_.output, xb_.data(), rows, logits + (start - first) * vocab, pool_, matmul_scratch_, isa_);
  }
  return true;
}

void Forward::compactStream(const std::vector<int64_t>& keep) {
  const auto dim = static_cast<size_t>(config_.dim);
  size_t out = 0;
  for (int64_t index : keep) {
    const auto in = static_cast<size_t>(index);
    if (in != out) {
      std::copy_n(x_.begin() + static_cast<std::ptrdiff_t>(in * dim), dim, x_.begin() + static_cast<std::ptrdiff_t>(out * dim));
      stream_positions_[out] = stream_positions_[in];
    }
    ++out;
  }
  x_.resize(out * dim);
  stream_positions_.resize(out);
}

void Forward::layerChunk(int64_t l, int64_t first, int64_t n, KvLayer& kv, cpu::RecentScores* scores) {
  const LlamaConfig& c = config_;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
  const int64_t dim = c.dim, kv_dim = c.n_kv_heads * c.head_dim, ffn = c.ffn_dim;
  const float eps = static_cast<float>(c.rms_eps);
  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  float* x = &x_[static_cast<size_t>(first * dim)];
  const int32_t* positions = &stream_positions_[static_cast<size_t>(first)];

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
  // x (n, dim) += proj (when given), then xb (n, dim) = rmsnorm(x) * norm: one pass per token while its row is in L1.
  const auto addThenNorm = [&](const float* proj, const float* norm) {
    forTokens([&](int64_t i) {
      float* row = &x[i * dim];
      if (proj) {
        for (int64_t d = 0; d < dim; ++d) row[d] += proj[i * dim + d];
      }
      if (norm) cpu::rmsNorm(row, norm, &xb_[static_cast<size_t>(i * dim)], dim, eps);
    });
  };

  // xb (n, dim) = rmsnorm(x) * attn_norm
  addThenNorm(nullptr, w.attn_norm);
  // q (n, dim) = xb @ wq^T;  k, v (n, kv_dim) = xb @ wk^T, xb @ wv^T
  cpu::matmul(w.wq, xb_.data(), n, q_.data(), pool_, matmul_scratch_, isa_);
  cpu::matmul(w.wk, xb_.data(), n, k_.data(), pool_, matmul_scratch_, isa_);
  cpu::matmul(w.wv, xb_.data(), n, v_.data(), pool_, matmul_scratch_, isa_);
  // RoPE at each token's original position: q over n_heads heads, k over n_kv_heads heads.
  const auto freq_base = static_cast<float>(c.rope_freq_base);
  forTokens([&](int64_t i) {
    cpu::ropeAdjacentPairs(&q_[static_cast<size_t>(i * dim)], c.n_heads, c.head_dim, c.rope_dim, positions[i], freq_base);
    cpu::ropeAdjacentPairs(&k_[static_cast<size_t>(i * kv_dim)], c.n_kv_heads, c.head_dim, c.rope_dim, positions[i], freq_base);
  });
  kv.append(k_.data(), v_.data(), positions, n);
  // att (n, dim) = softmax(q k^T / sqrt(head_dim), causal by position) v   over the layer's whole cache;
  // scored queries add their head-mean probabilities to the rows' scores (kv.scores() moves when rows are appended).
  if (scores) scores->scores = kv.scores();
  cpu::attention(q_.data(), positions, n, kv.keys(), kv.values(), kv.positions(), kv.length(), shape, att_.data(),
                 pool_, isa_, scores);
  // proj (n, dim) = att @ wo^T;  x += proj, xb (n, dim) = rmsnorm(x) * ffn_norm
  cpu::matmul(w.wo, att_.data(), n, proj_.data(), pool_, matmul_scratch_, isa_);
  addThenNorm(proj_.data(), w.ffn_norm);
  // gate, up (n, ffn) = xb @ w_gate^T, xb @ w_up^T;  gate = silu(gate) * up
  cpu::matmul(w.w_gate, xb_.data(), n, gate_.data(), pool_, matmul_scratch_, isa_);
  cpu::matmul(w.w_up, xb_.data(), n, up_.data(), pool_, matmul_scratch_, isa_);
  forTokens([&](int64_t i) { cpu::swiglu(&gate_[static_cast<size_t>(i * ffn)], &up_[static_cast<size_t>(i * ffn)], &gate_[static_cast<size_t>(i * ffn)], ffn); });
  // proj (n, dim) = gate @ w_down^T;  x += proj
  cpu::matmul(w.w_down, gate_.data(), n, proj_.data(), pool_, matmul_scratch_, isa_);
  addThenNorm(proj_.data(), nullptr);
}

}  // namespace pc
