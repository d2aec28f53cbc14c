#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/testing/check.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_kernels.h"

namespace {

using namespace pc::cpu;

// Normalized squared error of `actual` against `expected`, as llama.cpp's test-backend-ops measures it.
double nse(const std::vector<double>& expected, const std::vector<float>& actual) {
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    err += (actual[i] - expected[i]) * (actual[i] - expected[i]);
    norm += expected[i] * expected[i];
  }
  return norm == 0.0 ? err : err / norm;
}

double nse(const std::vector<float>& expected, const std::vector<float>& actual) {
  return nse(std::vector<double>(expected.begin(), expected.end()), actual);
}

std::vector<float> randomFloats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<f16_t> randomHalves(std::mt19937& rng, size_t n) {
  std::vector<f16_t> v(n);
  for (f16_t& h : v) h = f32ToF16(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng));
  return v;
}

float roundF16(double x) { return f16ToF32(f32ToF16(static_cast<float>(x))); }

// The kernel tables this machine can run (the scalar reference first).
std::vector<Isa> testIsas() {
  std::vector<Isa> isas = {Isa::Scalar};
  if (detectIsa() >= Isa::Avx2 && avx2OpsKernels()) isas.push_back(Isa::Avx2);
  if (detectIsa() >= Isa::Avx512 && avx512OpsKernels()) isas.push_back(Isa::Avx512);
  return isas;
}

std::string showDouble(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", x);
  return text;
}

#define PC_CHECK_BELOW(value, limit)                                                                            \
  do {                                                                                                         \
    const double pc_v_ = (value);                                                                              \
    if (!(pc_v_ < (limit)))                                                                                    \
      ::pc::testing::fail(__FILE__, __LINE__, #value " = " + showDouble(pc_v_) + " not below " #limit);         \
  } while (0)

// ---- rmsNorm ----

PC_TEST(rms_norm_matches_double_reference) {
  std::mt19937 rng(1);
  for (int64_t n : {1, 7, 33, 2048, 5003}) {
    const auto x = randomFloats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
    const auto w = randomFloats(rng, static_cast<size_t>(n), 0.5f, 1.5f);
    const float eps = 1e-5f;
    std::vector<float> out(static_cast<size_t>(n));
    rmsNorm(x.data(), w.data(), out.data(), n, eps);
    double sum = 0.0;
    for (float v : x) sum += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(n) + eps);
    std::vector<double> expected(static_cast<size_t>(n));
    double max_rel = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      expected[i] = x[i] * inv * w[i];
      max_rel = std::max(max_rel, std::abs(out[i] - expected[i]) / std::abs(expected[i]));
    }
    PC_CHECK_BELOW(max_rel, 1e-6);
    PC_CHECK_BELOW(nse(expected, out), 1e-13);
  }
}

// ---- RoPE ----

// Rotates like ropeAdjacentPairs in double, with the angles given.
std::vector<double> ropeReference(const std::vector<float>& x, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
                                  const std::vector<double>& theta) {
  std::vector<double> y(x.begin(), x.end());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < rope_dim; i += 2) {
      const double c = std::cos(theta[static_cast<size_t>(i / 2)]), s = std::sin(theta[static_cast<size_t>(i / 2)]);
      const double x0 = x[static_cast<size_t>(h * head_dim + i)], x1 = x[static_cast<size_t>(h * head_dim + i + 1)];
      y[static_cast<size_t>(h * head_dim + i)] = x0 * c - x1 * s;
      y[static_cast<size_t>(h * head_dim + i + 1)] = x0 * s + x1 * c;
    }
  }
  return y;
}

PC_TEST(rope_rotates_adjacent_pairs_with_ggml_angles) {
  std::mt19937 rng(2);
  const float base = 10000.0f;
  for (int64_t head_dim : {64, 128, 6}) {
    for (int64_t rope_dim : {head_dim, head_dim / 2 / 2 * 2}) {
      for (int32_t position : {0, 1, 7, 100, 4095}) {
        const int64_t n_heads = 3;
        const auto x = randomFloats(rng, static_cast<size_t>(n_heads * head_dim), -2.0f, 2.0f);
        auto y = x;
        ropeAdjacentPairs(y.data(), n_heads, head_dim, rope_dim, position, base);
        // ggml's angles: theta_i = position * theta_scale^i as a chain of f32 products (tight check of the rotation).
        std::vector<double> ggml_theta, exact_theta;
        float theta = static_cast<float>(position);
        const float theta_scale = std::pow(base, -2.0f / static_cast<float>(rope_dim));
        for (int64_t i = 0; i < rope_dim / 2; ++i) {
          ggml_theta.push_back(theta);
          exact_theta.push_back(position * std::pow(10000.0, -2.0 * static_cast<double>(i) / rope_dim));
          theta *= theta_scale;
        }
        PC_CHECK_BELOW(nse(ropeReference(x, n_heads, head_dim, rope_dim, ggml_theta), y), 1e-13);
        // Against exact angles the f32 chain drifts with the position (llama.cpp drifts the same way).
        const double drift_limit = position < 128 ? 1e-9 : 1e-7;
        PC_CHECK_BELOW(nse(ropeReference(x, n_heads, head_dim, rope_dim, exact_theta), y), drift_limit);
        for (int64_t h = 0; h < n_heads; ++h) {
          for (int64_t d = rope_dim; d < head_dim; ++d)
            PC_CHECK_EQ(y[static_cast<size_t>(h * head_dim + d)], x[static_cast<size_t>(h * head_dim + d)]);
        }
        if (position == 0) PC_CHECK(y == x);
      }
    }
  }
}

PC_TEST(rope_pairs_are_adjacent_not_half_offset) {
  // A unit vector on element 0 must rotate into element 1 (the half-offset "neox" pairing would use element 32).
  std::vector<float> x(64, 0.0f);
  x[0] = 1.0f;
  ropeAdjacentPairs(x.data(), 1, 64, 64, 3, 10000.0f);
  PC_CHECK_EQ(x[0], std::cos(3.0f));
  PC_CHECK_EQ(x[1], std::sin(3.0f));
  for (size_t d = 2; d < x.size(); ++d) PC_CHECK_EQ(x[d], 0.0f);
  PC_CHECK_THROWS(ropeAdjacentPairs(x.data(), 1, 64, 63, 0, 10000.0f), "even");
  PC_CHECK_THROWS(ropeAdjacentPairs(x.data(), 1, 64, 66, 0, 10000.0f), "head_dim");
}

// ---- swiglu ----

PC_TEST(swiglu_matches_double_reference_on_every_isa) {
  std::mt19937 rng(3);
  for (Isa isa : testIsas()) {
    for (int64_t n : {1, 5, 8, 16, 17, 33, 1000, 5632}) {
      auto gate = randomFloats(rng, static_cast<size_t>(n), -12.0f, 12.0f);
      const auto up = randomFloats(rng, static_cast<size_t>(n), -2.0f, 2.0f);
      if (n > 4) {  // exp overflow and underflow on either side, and zero
        gate[0] = -100.0f;
        gate[1] = 100.0f;
        gate[2] = 0.0f;
        gate[3] = -88.5f;
      }
      std::vector<double> expected(static_cast<size_t>(n));
      for (size_t i = 0; i < expected.size(); ++i) expected[i] = gate[i] / (1.0 + std::exp(-double{gate[i]})) * up[i];
      std::vector<float> out(static_cast<size_t>(n));
      opsKernels(isa).swiglu(gate.data(), up.data(), out.data(), n);
      PC_CHECK_BELOW(nse(expected, out), 1e-13);
      double max_rel = 0.0;
      for (size_t i = 0; i < out.size(); ++i) {
        const double scale = std::max(std::abs(expected[i]), 1e-30);
        max_rel = std::max(max_rel, std::abs(out[i] - expected[i]) / scale);
      }
      PC_CHECK_BELOW(max_rel, 2e-6);
      // In place, as the forward pass calls it (out = gate).
      auto in_place = gate;
      opsKernels(isa).swiglu(in_place.data(), up.data(), in_place.data(), n);
      PC_CHECK(in_place == out);
    }
  }
  std::vector<float> g = {1.0f, -2.0f, 3.0f}, u = {0.5f, 0.25f, 2.0f}, a(3), b(3);
  swiglu(g.data(), u.data(), a.data(), 3);
  opsKernels(detectIsa()).swiglu(g.data(), u.data(), b.data(), 3);
  PC_CHECK(a == b);
}

// ---- attention kernels ----

PC_TEST(softmax_row_matches_double_reference_on_every_isa) {
  std::mt19937 rng(4);
  for (Isa isa : testIsas()) {
    for (int64_t n : {1, 2, 15, 16, 17, 100, 4099}) {
      auto s = randomFloats(rng, static_cast<size_t>(n), -8.0f, 8.0f);
      if (n > 3) s[1] = s[3] = -INFINITY;  // masked keys
      std::vector<double> expected(static_cast<size_t>(n));
      double max = -INFINITY, sum = 0.0;
      for (float v : s) max = std::max<double>(max, v);
      for (size_t j = 0; j < s.size(); ++j) sum += expected[j] = std::exp(s[j] - max);
      for (double& p : expected) p /= sum;
      auto recent = randomFloats(rng, static_cast<size_t>(n), 0.0f, 1.0f);
      const auto recent_before = recent;
      const float weight = 0.3f;
      opsKernels(isa).softmax_row(s.data(), n, weight, recent.data());
      // f16 probabilities: within an f16 rounding of the exact ones, exactly representable, summing to ~1.
      PC_CHECK_BELOW(nse(expected, s), 1e-7);
      double total = 0.0, max_recent_err = 0.0;
      for (size_t j = 0; j < s.size(); ++j) {
        PC_CHECK_EQ(s[j], roundF16(s[j]));
        PC_CHECK(std::abs(s[j] - expected[j]) <= expected[j] * 1e-3 + 3e-8);  // 3e-8: f16 subnormal steps
        total += s[j];
        const double want = recent_before[j] + weight * expected[j];
        max_recent_err = std::max(max_recent_err, std::abs(recent[j] - want) / want);
      }
      PC_CHECK_BELOW(std::abs(total - 1.0), 2e-3);
      PC_CHECK_BELOW(max_recent_err, 1e-6);
      if (n > 3) PC_CHECK(s[1] == 0.0f && s[3] == 0.0f);
    }
    // An all-masked row gives zeros, and no recent scores.
    std::vector<float> masked(20, -INFINITY), recent(20, 0.5f);
    opsKernels(isa).softmax_row(masked.data(), 20, 1.0f, recent.data());
    for (size_t j = 0; j < masked.size(); ++j) PC_CHECK(masked[j] == 0.0f && recent[j] == 0.5f);
    opsKernels(isa).softmax_row(masked.data(), 0, 1.0f, nullptr);
  }
}

PC_TEST(scores_and_weighted_sum_match_double_reference_on_every_isa) {
  std::mt19937 rng(5);
  for (Isa isa : testIsas()) {
    for (int64_t head_dim : {64, 128, 40}) {  // 40: no SIMD version, the scalar loop
      for (int rows : {1, 3, 7, 8, 21, 40}) {  // lane sums below 8 rows, broadcast passes of 16, 8, .. 1 above
        for (int64_t n_keys : {0, 1, 15, 16, 17, 100}) {
          const int64_t kv_stride = 3 * head_dim;  // rows of several kv heads
          const auto q = randomFloats(rng, static_cast<size_t>(rows * head_dim), -1.0f, 1.0f);
          const auto k = randomHalves(rng, static_cast<size_t>(n_keys * kv_stride + head_dim));
          const int64_t s_stride = n_keys + 5;
          std::vector<float> s(static_cast<size_t>(rows * s_stride) + 1, 7.0f);
          const float scale = 0.125f;
          opsKernels(isa).attention_scores(q.data(), rows, k.data() + head_dim, kv_stride, n_keys, head_dim, scale,
                                           s.data(), s_stride);
          std::vector<double> expected_s;
          std::vector<float> actual_s;
          for (int r = 0; r < rows; ++r) {
            for (int64_t j = 0; j < n_keys; ++j) {
              double dot = 0.0;
              for (int64_t d = 0; d < head_dim; ++d)
                dot += double{q[static_cast<size_t>(r * head_dim + d)]} *
                       f16ToF32(k[static_cast<size_t>(head_dim + j * kv_stride + d)]);
              expected_s.push_back(dot * scale);
              actual_s.push_back(s[static_cast<size_t>(r * s_stride + j)]);
            }
            // Nothing written past the row.
            for (int64_t j = n_keys; j < s_stride; ++j) PC_CHECK_EQ(s[static_cast<size_t>(r * s_stride + j)], 7.0f);
          }
          PC_CHECK_BELOW(nse(expected_s, actual_s), 1e-10);  // f32 sums: one-key samples can cancel to ~1e-11

          const auto p = randomFloats(rng, static_cast<size_t>(rows * s_stride), 0.0f, 1.0f);
          const auto v = randomHalves(rng, static_cast<size_t>(n_keys * kv_stride + head_dim));
          const int64_t out_stride = head_dim + 3;
          std::vector<float> out(static_cast<size_t>(rows * out_stride), 7.0f);
          opsKernels(isa).weighted_sum(p.data(), s_stride, rows, v.data() + head_dim, kv_stride, n_keys, head_dim,
                                       out.data(), out_stride);
          std::vector<double> expected_o;
          std::vector<float> actual_o;
          for (int r = 0; r < rows; ++r) {
            for (int64_t d = 0; d < head_dim; ++d) {
              double acc = 0.0;
              for (int64_t j = 0; j < n_keys; ++j)
                acc += double{p[static_cast<size_t>(r * s_stride + j)]} *
                       f16ToF32(v[static_cast<size_t>(head_dim + j * kv_stride + d)]);
              expected_o.push_back(acc);
              actual_o.push_back(out[static_cast<size_t>(r * out_stride + d)]);
            }
            for (int64_t d = head_dim; d < out_stride; ++d)
              PC_CHECK_EQ(out[static_cast<size_t>(r * out_stride + d)], 7.0f);
          }
          PC_CHECK_BELOW(nse(expected_o, actual_o), 1e-10);
        }
      }
    }
  }
}

// ---- attention ----

struct AttentionCase {
  AttentionShape shape;
  std::vector<int32_t> q_pos, key_pos;
};

struct AttentionData {
  std::vector<float> q;
  std::vector<f16_t> k, v;
};

AttentionData randomAttentionData(std::mt19937& rng, const AttentionCase& c) {
  const auto n_q = c.q_pos.size(), n_k = c.key_pos.size();
  const auto q_dim = static_cast<size_t>(c.shape.n_heads * c.shape.head_dim);
  const auto kv_dim = static_cast<size_t>(c.shape.n_kv_heads * c.shape.head_dim);
  // Scores spread over a few units, so the softmax is neither flat nor one-hot.
  return {randomFloats(rng, n_q * q_dim, -0.8f, 0.8f), randomHalves(rng, n_k * kv_dim),
          randomHalves(rng, n_k * kv_dim)};
}

// The rounding rules of ops.h in double precision: q rounded to f16, f64 scores and softmax, probabilities rounded to
// f16, f64 p.v. probs (n_queries, n_heads, n_keys) receives the unrounded probabilities.
std::vector<double> attentionReference(const AttentionCase& c, const AttentionData& d, std::vector<double>* probs) {
  const int64_t n_q = static_cast<int64_t>(c.q_pos.size()), n_k = static_cast<int64_t>(c.key_pos.size());
  const int64_t hd = c.shape.head_dim, q_dim = c.shape.n_heads * hd, kv_dim = c.shape.n_kv_heads * hd;
  const int64_t group = c.shape.n_heads / c.shape.n_kv_heads;
  std::vector<double> out(static_cast<size_t>(n_q * q_dim), 0.0);
  if (probs) probs->assign(static_cast<size_t>(n_q * c.shape.n_heads * n_k), 0.0);
  for (int64_t t = 0; t < n_q; ++t) {
    for (int64_t h = 0; h < c.shape.n_heads; ++h) {
      const int64_t g = h / group;
      std::vector<double> s(static_cast<size_t>(n_k), -INFINITY);
      double max = -INFINITY;
      for (int64_t j = 0; j < n_k; ++j) {
        if (c.key_pos[static_cast<size_t>(j)] > c.q_pos[static_cast<size_t>(t)]) continue;
        double dot = 0.0;
        for (int64_t e = 0; e < hd; ++e)
          dot += double{roundF16(d.q[static_cast<size_t>(t * q_dim + h * hd + e)])} *
                 f16ToF32(d.k[static_cast<size_t>(j * kv_dim + g * hd + e)]);
        s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(hd));
        max = std::max(max, s[static_cast<size_t>(j)]);
      }
      if (max == -INFINITY) continue;
      double sum = 0.0;
      for (double& x : s) sum += x = std::exp(x - max);
      for (int64_t j = 0; j < n_k; ++j) {
        const double p = s[static_cast<size_t>(j)] / sum;
        if (probs) (*probs)[static_cast<size_t>((t * c.shape.n_heads + h) * n_k + j)] = p;
        for (int64_t e = 0; e < hd; ++e)
          out[static_cast<size_t>(t * q_dim + h * hd + e)] +=
              double{roundF16(p)} * f16ToF32(d.v[static_cast<size_t>(j * kv_dim + g * hd + e)]);
      }
    }
  }
  return out;
}

std::vector<float> runAttention(const AttentionCase& c, const AttentionData& d, ThreadPool& pool, Isa isa,
                                RecentScores* recent = nullptr) {
  std::vector<float> out(c.q_pos.size() * static_cast<size_t>(c.shape.n_heads * c.shape.head_dim), 99.0f);
  attention(d.q.data(), c.q_pos.data(), static_cast<int64_t>(c.q_pos.size()), d.k.data(), d.v.data(),
            c.key_pos.data(), static_cast<int64_t>(c.key_pos.size()), c.shape, out.data(), pool, isa, recent);
  return out;
}

std::vector<AttentionCase> attentionCases() {
  // A compressed cache: original positions with gaps, queries between them (so some keys are masked for some).
  const std::vector<int32_t> gaps = {0, 1, 5, 9, 10, 11, 20, 21, 22, 23, 30, 31, 40, 41, 42, 43, 44, 45, 46, 50, 51};
  std::vector<int32_t> long_keys;
  for (int32_t j = 0; j < 300; ++j) long_keys.push_back(j * 2 + (j % 7 == 0));
  return {
      {{8, 2, 64}, {51}, gaps},                       // GQA decode
      {{8, 2, 64}, {3, 10, 25, 45, 51}, gaps},        // GQA prefill rows at gapped positions
      {{4, 4, 128}, {0, 9, 22, 51}, gaps},            // MHA
      {{4, 1, 64}, {46, 50}, gaps},                   // MQA: one kv head, heads split across threads
      {{6, 3, 40}, {1, 44}, gaps},                    // head_dim without a SIMD version
      {{32, 4, 64}, {599, 600, 601}, long_keys},      // TinyLlama's shape, a few hundred keys
      {{8, 2, 64}, {10, 0, 30}, {5, 1, 40, 0, 9, 30, 2, 31}},  // keys out of position order: masked one by one
      {{4, 2, 64}, {-1, 3}, {0, 1, 2}},               // a query before every key sees nothing: zeros
      {{4, 2, 64}, {7, 8}, {}},                       // empty cache
      {{4, 4, 64}, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 51}, gaps},  // MHA prefill
      {{8, 2, 128}, {3, 70, 150, 300, 301, 400, 500, 590, 599}, long_keys},  // tiles of 8 queries and a rest of 1
  };
}

PC_TEST(attention_matches_double_reference) {
  std::mt19937 rng(6);
  double worst_reference = 0.0, worst_simd = 0.0;
  for (const AttentionCase& c : attentionCases()) {
    const AttentionData d = randomAttentionData(rng, c);
    const std::vector<double> expected = attentionReference(c, d, nullptr);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> scalar;
      for (Isa isa : testIsas()) {
        const std::vector<float> out = runAttention(c, d, pool, isa);
        const double err = nse(expected, out);
        PC_CHECK_BELOW(err, 1e-6);
        worst_reference = std::max(worst_reference, err);
        if (isa == Isa::Scalar) {
          scalar = out;
        } else {
          const double simd_err = nse(scalar, out);  // SIMD against the scalar reference kernels
          PC_CHECK_BELOW(simd_err, 1e-6);
          worst_simd = std::max(worst_simd, simd_err);
        }
        // Each output row depends only on its own (query, head): the thread count changes nothing.
        ThreadPool single(1);
        PC_CHECK(runAttention(c, d, single, isa) == out);
      }
    }
  }
  std::printf("     worst nse: %.3g vs double reference, %.3g SIMD vs scalar\n", worst_reference, worst_simd);
  // Rows of a query that sees no key are zeros.
  const AttentionCase c = attentionCases()[7];
  const AttentionData d = randomAttentionData(rng, c);
  ThreadPool pool(2);
  const auto out = runAttention(c, d, pool, detectIsa());
  for (int64_t e = 0; e < c.shape.n_heads * c.shape.head_dim; ++e) PC_CHECK_EQ(out[static_cast<size_t>(e)], 0.0f);
}

PC_TEST(attention_errors_of_the_tiny_llama_decode_shape) {
  // Decode over 4096 keys at TinyLlama's shape: report the error figures of each ISA.
  std::mt19937 rng(7);
  AttentionCase c{{32, 4, 64}, {4095}, {}};
  for (int32_t j = 0; j < 4096; ++j) c.key_pos.push_back(j);
  const AttentionData d = randomAttentionData(rng, c);
  const std::vector<double> expected = attentionReference(c, d, nullptr);
  ThreadPool pool(2);
  for (Isa isa : testIsas()) {
    const double err = nse(expected, runAttention(c, d, pool, isa));
    std::printf("     %s: nse %.3g vs double reference\n", isaName(isa), err);
    PC_CHECK_BELOW(err, 1e-6);
  }
}

PC_TEST(recent_scores_equal_brute_force_head_mean) {
  std::mt19937 rng(8);
  for (const AttentionCase& c : attentionCases()) {
    const int64_t n_q = static_cast<int64_t>(c.q_pos.size()), n_k = static_cast<int64_t>(c.key_pos.size());
    const AttentionData d = randomAttentionData(rng, c);
    std::vector<double> probs;
    attentionReference(c, d, &probs);
    for (int64_t first_query : {int64_t{0}, n_q - 1, n_q}) {
      std::vector<float> weights;
      for (int64_t t = first_query; t < n_q; ++t) weights.push_back(1.0f + 0.2f * static_cast<float>(t - first_query));
      // Brute force: materialise every probability, then the weighted head-mean of the recent rows.
      std::vector<double> expected(static_cast<size_t>(n_k), 0.25);
      for (int64_t t = first_query; t < n_q; ++t) {
        for (int64_t h = 0; h < c.shape.n_heads; ++h) {
          for (int64_t j = 0; j < n_k; ++j)
            expected[static_cast<size_t>(j)] += weights[static_cast<size_t>(t - first_query)] / c.shape.n_heads *
                                                probs[static_cast<size_t>((t * c.shape.n_heads + h) * n_k + j)];
        }
      }
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        for (Isa isa : testIsas()) {
          std::vector<float> scores(static_cast<size_t>(n_k), 0.25f);  // accumulated into
          RecentScores recent{first_query, weights.data(), scores.data()};
          const auto out = runAttention(c, d, pool, isa, &recent);
          PC_CHECK(out == runAttention(c, d, pool, isa));  // scoring does not change the output
          PC_CHECK_BELOW(nse(expected, scores), 1e-11);
          // Each scored query's probabilities sum to 1 (0 if it sees no key): the scores grow by sum(weights).
          double added = 0.0, want = 0.0;
          for (float s : scores) added += s - 0.25;
          for (int64_t t = first_query; t < n_q; ++t) {
            const bool sees_a_key = [&] {
              for (int32_t kp : c.key_pos) {
                if (kp <= c.q_pos[static_cast<size_t>(t)]) return true;
              }
              return false;
            }();
            if (sees_a_key) want += weights[static_cast<size_t>(t - first_query)];
          }
          PC_CHECK_BELOW(std::abs(added - want), 1e-5 * (1.0 + want));
          // Deterministic: the same thread count gives the same bits.
          std::vector<float> again(static_cast<size_t>(n_k), 0.25f);
          RecentScores recent_again{first_query, weights.data(), again.data()};
          runAttention(c, d, pool, isa, &recent_again);
          PC_CHECK(again == scores);
        }
      }
    }
  }
}

PC_TEST(attention_rejects_bad_arguments) {
  ThreadPool pool(1);
  std::vector<float> q(64), out(64);
  std::vector<f16_t> k(64), v(64);
  const int32_t pos = 0;
  PC_CHECK_THROWS(attention(q.data(), &pos, 1, k.data(), v.data(), &pos, 1, {3, 2, 32}, out.data(), pool, Isa::Scalar),
                  "bad shape");
  std::vector<float> weights(1), scores(1);
  RecentScores recent{2, weights.data(), scores.data()};
  PC_CHECK_THROWS(attention(q.data(), &pos, 1, k.data(), v.data(), &pos, 1, {1, 1, 64}, out.data(), pool,
                            Isa::Scalar, &recent),
                  "first_query");
}

}  // namespace
