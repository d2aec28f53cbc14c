// The inner loops of ops.cc, one table per ISA: a scalar reference (ops.cc) and AVX2 / AVX-512 versions
// (ops_avx2.cc, ops_avx512.cc, written once as templates in ops_simd.h). Internal to the kernels; tests use it to
// compare each ISA with the reference.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {

struct OpsKernels {
  // out (n,) = silu(gate) * up; out may alias gate or up.
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);

  // out (n,) = x rounded to the nearest f16 (ties to even), as float. out may alias x.
  void (*round_to_f16)(const float* x, float* out, int64_t n);

  // The attention kernels work on q rows that share one kv head: the query heads of a group, for one query (decode)
  // or several (prompt processing), so each f16 key and value row is widened once for all of them.

  // s[r][j] = scale * dot(q[r], k[j]) for r < rows, j < n_keys; dots accumulate in f32.
  //   q (rows, head_dim) f32, k rows of head_dim f16 `k_stride` elements apart, s rows `s_stride` apart.
  void (*attention_scores)(const float* q, int rows, const f16_t* k, int64_t k_stride, int64_t n_keys,
                           int64_t head_dim, float scale, float* s, int64_t s_stride);

  // One attention row in place, as ggml's soft_max: p = exp(s - max(s)) / sum (the sum accumulated in double),
  // with -inf entries (masked keys) giving 0 and an all-masked row giving all 0. If `recent` is not null,
  // recent[j] += recent_weight * p[j] with the f32 p. Finally p is rounded to f16 (the precision p.v runs at).
  void (*softmax_row)(float* s, int64_t n, float recent_weight, float* recent);

  // out[r] (head_dim,) = sum_j p[r][j] * v[j] for r < rows, accumulated in f32 in key order.
  //   p rows `p_stride` apart, v rows of head_dim f16 `v_stride` elements apart, out rows `out_stride` apart.
  void (*weighted_sum)(const float* p, int64_t p_stride, int rows, const f16_t* v, int64_t v_stride,
                       int64_t n_keys, int64_t head_dim, float* out, int64_t out_stride);
};

// The best table at or below `isa` that this build has.
const OpsKernels& opsKernels(Isa isa);

const OpsKernels& scalarOpsKernels();
// nullptr where the file was compiled without the ISA (non-x86 builds).
const OpsKernels* avx2OpsKernels();
const OpsKernels* avx512OpsKernels();

}  // namespace pc::cpu
