// The forward pass's element-wise and attention operations on float rows. Each has a scalar definition here that
// mirrors llama.cpp's arithmetic closely enough for logit parity; the hot ones dispatch to SIMD by ISA.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_blocks.h"
#include "kernels/cpu/thread_pool.h"

namespace pc::cpu {

// out (n,) = x (n,) / sqrt(mean(x^2) + eps) * weight (n,)   (sum of squares accumulated in double, as ggml)
void rmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps);

// Rotates adjacent pairs (x[2i], x[2i+1]) of the first rope_dim elements of each of n_heads heads (head_dim apart)
// by angle position * freq_base^(-2i/rope_dim): llama GGUF weights expect this pairing ("normal" RoPE in ggml).
void ropeAdjacentPairs(float* x, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int32_t position, float freq_base);

// out (n,) = silu(gate) * up, silu(g) = g / (1 + exp(-g))
void swiglu(const float* gate, const float* up, float* out, int64_t n);

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // query head h reads key/value head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
};

// PyramidInfer's pivotal-context scoring: while attention runs, accumulate for each key j the attention
// probability that the "recent" queries give it, averaged over heads and weighted per query:
//   scores[j] += query_weight[t - first_query] * mean_h(p[t, h, j])   for t >= first_query
// Only these rows are ever summed; no (queries x keys) probability matrix exists.
struct RecentScores {
  int64_t first_query = 0;            // queries before it are not scored
  const float* query_weight = nullptr;  // (n_queries - first_query,)
  float* scores = nullptr;            // (n_keys,), accumulated into (the caller zeroes it)
};

// Causal attention of n_queries query rows over n_keys cached rows.
//   q (n_queries, n_heads * head_dim) f32, q_pos (n_queries,) the queries' original positions
//   k, v (n_keys, n_kv_heads * head_dim) f16 rows, key_pos (n_keys,) the keys' original positions
//   out (n_queries, n_heads * head_dim) f32
// Query t attends to key j iff key_pos[j] <= q_pos[t] (positions, not indices: a compressed cache keeps original
// positions). Numerics follow llama.cpp with an F16 cache and no flash attention: q is rounded to f16 before q.k,
// scores are scaled by 1/sqrt(head_dim) and soft-maxed in f32, probabilities are rounded to f16 before p.v, and
// every sum accumulates in f32. Threads split (query, head) pairs. `recent` may be null.
void attention(const float* q, const int32_t* q_pos, int64_t n_queries, const f16_t* k, const f16_t* v,
               const int32_t* key_pos, int64_t n_keys, const AttentionShape& shape, float* out, ThreadPool& pool,
               Isa isa, RecentScores* recent = nullptr);

}  // namespace pc::cpu
