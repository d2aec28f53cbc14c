// The SIMD versions of ops_kernels.h, written once over a vector-traits type V and instantiated by ops_avx2.cc
// (V = 8 floats) and ops_avx512.cc (V = 16 floats). Include it only from those files, after defining V.
//
// Everything here has internal linkage: each ISA's file keeps its own copies, so the linker can never hand the
// AVX-512 code to a caller on a machine without it. For the same reason this file uses no standard-library
// templates (their out-of-line copies would be shared between files compiled with different flags).
//
// Loops over lanes, chunks and rows have compile-time trip counts and carry `#pragma GCC unroll`: unrolled, their
// arrays of vectors live in registers (GCC -O2 would otherwise keep them in memory, at several times the cost).
//
// V provides: F (the vector), kLanes, kAccumulators (vector registers a kernel may keep as accumulators),
// zero, set1, load, store, loadPartial(p, count, fill), storePartial(p, x, count), loadF16, roundF16, add, sub,
// mul, div, fma (a*b+c), fnmadd (c-a*b), max, roundNearest, scale2 (p * 2^n for integral n in [-126, 127]),
// selectLess(a, b, if_less, otherwise), reduceAdd, reduceMax, sumLanes (vector i -> lane i of its lane sum),
// transpose (kLanes vectors as a square matrix, in place).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cpu/ops_kernels.h"

namespace pc::cpu {
namespace {

// e^x in the style of Cephes' expf (1.2 ulp at worst over [-87, 88]): x = n ln2 + r with |r| <= ln2/2 (ln2 split
// in two for an exact reduction), e^r by a degree-6 polynomial, times 2^n. Below -87.33 the result is 0 (so -inf
// gives exactly 0, as softmax's masked keys need); above 88.37 it is inf.
template <class V>
typename V::F expV(typename V::F x) {
  using F = typename V::F;
  const F n = V::roundNearest(V::mul(x, V::set1(1.44269504088896341f)));
  F r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  F p = V::set1(1.9875691500e-4f);
  p = V::fma(p, r, V::set1(1.3981999507e-3f));
  p = V::fma(p, r, V::set1(8.3334519073e-3f));
  p = V::fma(p, r, V::set1(4.1665795894e-2f));
  p = V::fma(p, r, V::set1(1.6666665459e-1f));
  p = V::fma(p, r, V::set1(5.0000001201e-1f));
  p = V::fma(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
  // Between the two limits n lies in [-126, 127], which scale2 needs; outside them the limit value replaces it.
  const F result = V::selectLess(x, V::set1(-87.3365478515625f), V::zero(), V::scale2(p, n));
  return V::selectLess(V::set1(88.37f), x, V::set1(INFINITY), result);
}

// Runs step(offset, count) over [0, n) in whole vectors, then once over the remainder (count < kLanes).
template <class V, typename Step>
void forVectors(int64_t n, Step step) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) step(i, V::kLanes);
  if (i < n) step(i, static_cast<int>(n - i));
}

template <class V>
typename V::F loadCount(const float* p, int count, float fill) {
  return count == V::kLanes ? V::load(p) : V::loadPartial(p, count, fill);
}

template <class V>
void storeCount(float* p, typename V::F x, int count) {
  if (count == V::kLanes) {
    V::store(p, x);
  } else {
    V::storePartial(p, x, count);
  }
}

// Cache rows are strided (one kv head's slice of each key), which the hardware prefetchers do not follow: the
// attention kernels fetch the rows they will reach kPrefetchKeys keys later themselves.
constexpr int kPrefetchKeys = 32;

inline void prefetchRow(const f16_t* row, int64_t elements) {
  for (int64_t e = 0; e < elements; e += 64 / sizeof(f16_t)) __builtin_prefetch(row + e);
}

template <class V>
void swigluT(const float* gate, const float* up, float* out, int64_t n) {
  // ggml_vec_swiglu_f32: silu(g) * u with silu(g) = g / (1 + e^-g)
  const auto one = V::set1(1.0f);
  forVectors<V>(n, [&](int64_t i, int count) {
    const auto g = loadCount<V>(gate + i, count, 0.0f), u = loadCount<V>(up + i, count, 0.0f);
    const auto silu = V::div(g, V::add(one, expV<V>(V::sub(V::zero(), g))));
    storeCount<V>(out + i, V::mul(silu, u), count);
  });
}

template <class V>
void roundToF16T(const float* x, float* out, int64_t n) {
  forVectors<V>(n, [&](int64_t i, int count) {
    storeCount<V>(out + i, V::roundF16(loadCount<V>(x + i, count, 0.0f)), count);
  });
}

// ---- attention: q rows (query heads, of one or several queries, that share a kv head) against f16 key rows ----

// Scores for few rows (decode): keys in blocks of kLanes, each block widened from f16 once (kf) for all rows. Each
// key's dot stays one vector of per-lane partial sums until sumLanes turns the block's kLanes vectors into its dots.
template <class V, int C>
void scoresByLaneSums(const float* q, int rows, const f16_t* k, int64_t k_stride, int64_t n_keys, float scale,
                      float* s, int64_t s_stride) {
  using F = typename V::F;
  constexpr int L = V::kLanes, D = C * L;
  alignas(64) float kf[L * D];
  const F vscale = V::set1(scale);
  for (int64_t j0 = 0; j0 < n_keys; j0 += L) {
    const int block = n_keys - j0 < L ? static_cast<int>(n_keys - j0) : L;
    for (int64_t j = j0 + kPrefetchKeys; j < j0 + kPrefetchKeys + L && j < n_keys; ++j)
      prefetchRow(k + j * k_stride, D);
    #pragma GCC unroll 16
    for (int i = 0; i < L; ++i) {
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
        V::store(kf + i * D + c * L, i < block ? V::loadF16(k + (j0 + i) * k_stride + c * L) : V::zero());
    }
    for (int r = 0; r < rows; ++r) {
      F qr[C];
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) qr[c] = V::load(q + r * D + c * L);
      F partial[L];
      #pragma GCC unroll 16
      for (int i = 0; i < L; ++i) {
        partial[i] = V::mul(qr[0], V::load(kf + i * D));
        #pragma GCC unroll 16
        for (int c = 1; c < C; ++c) partial[i] = V::fma(qr[c], V::load(kf + i * D + c * L), partial[i]);
      }
      storeCount<V>(s + r * s_stride + j0, V::mul(V::sumLanes(partial), vscale), block);
    }
  }
}

// R rows' scores for one transposed key block: each row's dots with the block's keys accumulate in one vector as
// sum_d q[d] * kt[d], with no horizontal sums.
template <class V, int C, int R>
void scoresPass(const float* q, const float* kt, float scale, float* s, int64_t s_stride, int block) {
  using F = typename V::F;
  constexpr int L = V::kLanes, D = C * L;
  F acc[R];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = V::zero();
  for (int d = 0; d < D; ++d) {
    const F keys = V::load(kt + d * L);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = V::fma(V::set1(q[r * D + d]), keys, acc[r]);
  }
  const F vscale = V::set1(scale);
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) storeCount<V>(s + r * s_stride, V::mul(acc[r], vscale), block);
}

// All rows, R at a time, the remainder with passes of R/2, R/4, ...
template <class V, int C, int R>
void scoresPasses(const float* q, int rows, const float* kt, float scale, float* s, int64_t s_stride, int block) {
  for (; rows >= R; rows -= R, q += R * C * V::kLanes, s += R * s_stride)
    scoresPass<V, C, R>(q, kt, scale, s, s_stride, block);
  if constexpr (R > 1) {
    if (rows > 0) scoresPasses<V, C, R / 2>(q, rows, kt, scale, s, s_stride, block);
  }
}

// Scores for many rows (prompt processing): each key block is widened and transposed once (kt: one vector of the
// block's keys per dimension), then kAccumulators rows at a time take their dots by broadcast and FMA.
template <class V, int C>
void scoresByBroadcast(const float* q, int rows, const f16_t* k, int64_t k_stride, int64_t n_keys, float scale,
                       float* s, int64_t s_stride) {
  using F = typename V::F;
  constexpr int L = V::kLanes, D = C * L;
  alignas(64) float kt[D * L];
  for (int64_t j0 = 0; j0 < n_keys; j0 += L) {
    const int block = n_keys - j0 < L ? static_cast<int>(n_keys - j0) : L;
    for (int64_t j = j0 + kPrefetchKeys; j < j0 + kPrefetchKeys + L && j < n_keys; ++j)
      prefetchRow(k + j * k_stride, D);
    for (int c = 0; c < C; ++c) {
      F t[L];
      #pragma GCC unroll 16
      for (int i = 0; i < L; ++i) t[i] = i < block ? V::loadF16(k + (j0 + i) * k_stride + c * L) : V::zero();
      V::transpose(t);
      #pragma GCC unroll 16
      for (int e = 0; e < L; ++e) V::store(kt + (c * L + e) * L, t[e]);
    }
    scoresPasses<V, C, V::kAccumulators>(q, rows, kt, scale, s + j0, s_stride, block);
  }
}

// Transposing a key block costs about what the lane sums of a dozen rows do (measured on AVX-512): from 16 rows on,
// broadcasting wins.
template <class V, int C>
void scoresForHeadDim(const float* q, int rows, const f16_t* k, int64_t k_stride, int64_t n_keys, float scale,
                      float* s, int64_t s_stride) {
  if (rows >= 16) return scoresByBroadcast<V, C>(q, rows, k, k_stride, n_keys, scale, s, s_stride);
  scoresByLaneSums<V, C>(q, rows, k, k_stride, n_keys, scale, s, s_stride);
}

template <class V>
void attentionScoresT(const float* q, int rows, const f16_t* k, int64_t k_stride, int64_t n_keys, int64_t head_dim,
                      float scale, float* s, int64_t s_stride) {
  // The llama head sizes; others take the scalar loop.
  if (head_dim == 64) return scoresForHeadDim<V, 64 / V::kLanes>(q, rows, k, k_stride, n_keys, scale, s, s_stride);
  if (head_dim == 128) return scoresForHeadDim<V, 128 / V::kLanes>(q, rows, k, k_stride, n_keys, scale, s, s_stride);
  scalarOpsKernels().attention_scores(q, rows, k, k_stride, n_keys, head_dim, scale, s, s_stride);
}

template <class V>
void softmaxRowT(float* s, int64_t n, float recent_weight, float* recent) {
  using F = typename V::F;
  F vmax = V::set1(-INFINITY);
  forVectors<V>(n, [&](int64_t j, int count) { vmax = V::max(vmax, loadCount<V>(s + j, count, -INFINITY)); });
  const float max = V::reduceMax(vmax);
  if (max == -INFINITY) {
    for (int64_t j = 0; j < n; ++j) s[j] = 0.0f;
    return;
  }
  // As ggml_vec_soft_max_f32: each vector of e^(s - max) summed in f32, the vector sums accumulated in double.
  const F vm = V::set1(max);
  double sum = 0.0;
  forVectors<V>(n, [&](int64_t j, int count) {
    const F e = expV<V>(V::sub(loadCount<V>(s + j, count, -INFINITY), vm));
    storeCount<V>(s + j, e, count);
    sum += static_cast<double>(V::reduceAdd(e));
  });
  const F inv = V::set1(static_cast<float>(1.0 / sum)), weight = V::set1(recent_weight);
  forVectors<V>(n, [&](int64_t j, int count) {
    const F p = V::mul(loadCount<V>(s + j, count, 0.0f), inv);
    if (recent) storeCount<V>(recent + j, V::add(loadCount<V>(recent + j, count, 0.0f), V::mul(weight, p)), count);
    storeCount<V>(s + j, V::roundF16(p), count);
  });
}

// Where a weighted-sum pass reads value row j's c-th vector: from the f16 cache rows, widened on the fly (each
// widened vector then serves the pass's rows), or from rows widened beforehand into a chunk buffer (shared by all
// passes).
template <class V, int D>
struct HalfValues {
  const f16_t* v;
  int64_t stride, n;
  typename V::F operator()(int64_t j, int c) const { return V::loadF16(v + j * stride + c * V::kLanes); }
  void prefetch(int64_t j) const {
    if (j + kPrefetchKeys < n) prefetchRow(v + (j + kPrefetchKeys) * stride, D);
  }
};

template <class V, int D>
struct WideValues {
  const float* vf;
  typename V::F operator()(int64_t j, int c) const { return V::load(vf + j * D + c * V::kLanes); }
  void prefetch(int64_t) const {}  // already in L1
};

// out (NH, C * kLanes) (+)= p (NH, n) . values: NH * C accumulators stay in registers over the keys; `accumulate`
// adds to out (a later chunk of keys) instead of overwriting it.
template <class V, int C, int NH, class Values>
void weightedSumPass(const float* p, int64_t p_stride, Values values, int64_t n, float* out, int64_t out_stride,
                     bool accumulate) {
  using F = typename V::F;
  constexpr int L = V::kLanes;
  F acc[NH][C];
  #pragma GCC unroll 16
  for (int h = 0; h < NH; ++h) {
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[h][c] = accumulate ? V::load(out + h * out_stride + c * L) : V::zero();
  }
  for (int64_t j = 0; j < n; ++j) {
    values.prefetch(j);
    F pj[NH];
    #pragma GCC unroll 16
    for (int h = 0; h < NH; ++h) pj[h] = V::set1(p[h * p_stride + j]);
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const F value = values(j, c);
      #pragma GCC unroll 16
      for (int h = 0; h < NH; ++h) acc[h][c] = V::fma(pj[h], value, acc[h][c]);
    }
  }
  #pragma GCC unroll 16
  for (int h = 0; h < NH; ++h) {
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) V::store(out + h * out_stride + c * L, acc[h][c]);
  }
}

// All rows, NH at a time, the remainder with smaller passes.
template <class V, int C, int NH, class Values>
void weightedSumRows(const float* p, int64_t p_stride, int rows, Values values, int64_t n, float* out,
                     int64_t out_stride, bool accumulate) {
  for (; rows >= NH; rows -= NH, p += NH * p_stride, out += NH * out_stride)
    weightedSumPass<V, C, NH>(p, p_stride, values, n, out, out_stride, accumulate);
  if constexpr (NH > 1) {
    if (rows > 0) weightedSumRows<V, C, NH - 1>(p, p_stride, rows, values, n, out, out_stride, accumulate);
  }
}

// out (rows, C * kLanes) = p (rows, n_keys) . v, each output element summed over the keys in order. Rows that fit
// one pass widen the values on the fly; more rows widen a chunk of keys at a time once into vf (32 KB, stays in L1)
// for all passes, which also reads the cache rows from memory once.
template <class V, int C>
void weightedSumForHeadDim(const float* p, int64_t p_stride, int rows, const f16_t* v, int64_t v_stride,
                           int64_t n_keys, float* out, int64_t out_stride) {
  constexpr int L = V::kLanes, D = C * L, kChunk = 8192 / D;
  constexpr int kRowsPerPass = V::kAccumulators / C > 1 ? V::kAccumulators / C : 1;
  if (rows <= kRowsPerPass || n_keys == 0)
    return weightedSumRows<V, C, kRowsPerPass>(p, p_stride, rows, HalfValues<V, D>{v, v_stride, n_keys}, n_keys,
                                               out, out_stride, false);
  alignas(64) float vf[kChunk * D];
  for (int64_t j0 = 0; j0 < n_keys; j0 += kChunk) {
    const int n = n_keys - j0 < kChunk ? static_cast<int>(n_keys - j0) : kChunk;
    for (int j = 0; j < n; ++j) {
      if (j0 + j + kPrefetchKeys < n_keys) prefetchRow(v + (j0 + j + kPrefetchKeys) * v_stride, D);
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) V::store(vf + j * D + c * L, V::loadF16(v + (j0 + j) * v_stride + c * L));
    }
    weightedSumRows<V, C, kRowsPerPass>(p + j0, p_stride, rows, WideValues<V, D>{vf}, n, out, out_stride, j0 > 0);
  }
}

template <class V>
void weightedSumT(const float* p, int64_t p_stride, int rows, const f16_t* v, int64_t v_stride, int64_t n_keys,
                  int64_t head_dim, float* out, int64_t out_stride) {
  if (head_dim == 64)
    return weightedSumForHeadDim<V, 64 / V::kLanes>(p, p_stride, rows, v, v_stride, n_keys, out, out_stride);
  if (head_dim == 128)
    return weightedSumForHeadDim<V, 128 / V::kLanes>(p, p_stride, rows, v, v_stride, n_keys, out, out_stride);
  scalarOpsKernels().weighted_sum(p, p_stride, rows, v, v_stride, n_keys, head_dim, out, out_stride);
}

template <class V>
constexpr OpsKernels simdOpsKernels() {
  return {swigluT<V>, roundToF16T<V>, attentionScoresT<V>, softmaxRowT<V>, weightedSumT<V>};
}

}  // namespace
}  // namespace pc::cpu
