#include "kernels/cpu/ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_kernels.h"

namespace pc::cpu {
namespace {

// ---- scalar reference kernels (ops_kernels.h): the arithmetic of ggml's scalar paths ----

void swigluScalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];  // ggml_silu_f32(g) * up
  }
}

void roundToF16Scalar(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16ToF32(f32ToF16(x[i]));
}

// One f16 row as floats, in a per-thread buffer reused across calls.
const float* widenRow(const f16_t* row, int64_t n) {
  thread_local std::vector<float> wide;
  wide.resize(static_cast<size_t>(n));
  for (int64_t d = 0; d < n; ++d) wide[static_cast<size_t>(d)] = f16ToF32(row[d]);
  return wide.data();
}

void attentionScoresScalar(const float* q, int rows, const f16_t* k, int64_t k_stride, int64_t n_keys,
                           int64_t head_dim, float scale, float* s, int64_t s_stride) {
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* key = widenRow(k + j * k_stride, head_dim);
    for (int r = 0; r < rows; ++r) {
      float dot = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) dot += q[r * head_dim + d] * key[d];
      s[r * s_stride + j] = dot * scale;
    }
  }
}

void softmaxRowScalar(float* s, int64_t n, float recent_weight, float* recent) {
  float max = -INFINITY;
  for (int64_t j = 0; j < n; ++j) max = std::max(max, s[j]);
  if (max == -INFINITY) {
    std::fill(s, s + n, 0.0f);
    return;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - max);
    sum += s[j];
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) {
    const float p = s[j] * inv;
    if (recent) recent[j] += recent_weight * p;
    s[j] = f16ToF32(f32ToF16(p));
  }
}

void weightedSumScalar(const float* p, int64_t p_stride, int rows, const f16_t* v, int64_t v_stride, int64_t n_keys,
                       int64_t head_dim, float* out, int64_t out_stride) {
  for (int r = 0; r < rows; ++r) std::fill(out + r * out_stride, out + r * out_stride + head_dim, 0.0f);
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* value = widenRow(v + j * v_stride, head_dim);
    for (int r = 0; r < rows; ++r) {
      const float pj = p[r * p_stride + j];
      for (int64_t d = 0; d < head_dim; ++d) out[r * out_stride + d] += pj * value[d];
    }
  }
}

constexpr OpsKernels kScalarKernels = {swigluScalar, roundToF16Scalar, attentionScoresScalar, softmaxRowScalar,
                                       weightedSumScalar};

// Rows (query heads x queries) per attention work item: as many as keep the item's score rows within kScoreBytes
// (half of a 2 MB L2, the rest holding the kv head's keys and values), so each f16 K/V row is widened (and each key
// block transposed) once for as many rows as possible; at least kMinItemRows at long contexts, at most
// kMaxItemRows. (Against a fixed 32 rows, attention ran ~10% faster at 4.6K keys, ~15% at 512, on the target machine.)
constexpr size_t kScoreBytes = 1 << 20;
constexpr int64_t kMinItemRows = 32;
constexpr int64_t kMaxItemRows = 128;

void checkAttentionArguments(const float* q, const int32_t* q_pos, int64_t n_queries, const f16_t* k, const f16_t* v,
                             const int32_t* key_pos, int64_t n_keys, const AttentionShape& shape, const float* out,
                             const RecentScores* recent) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("attention: " + what); };
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.n_heads % shape.n_kv_heads != 0)
    fail("bad shape: " + std::to_string(shape.n_heads) + " heads, " + std::to_string(shape.n_kv_heads) +
         " kv heads, head_dim " + std::to_string(shape.head_dim));
  if (n_queries < 0 || n_keys < 0) fail("negative query or key count");
  if (n_queries > 0 && (!q || !q_pos || !out)) fail("null query or output");
  if (n_queries > 0 && n_keys > 0 && (!k || !v || !key_pos)) fail("null keys or values");
  if (recent && (recent->first_query < 0 || recent->first_query > n_queries))
    fail("recent first_query " + std::to_string(recent->first_query) + " outside 0.." + std::to_string(n_queries));
  if (recent && recent->first_query < n_queries && (!recent->query_weight || (n_keys > 0 && !recent->scores)))
    fail("recent scores without weights or output");
}

}  // namespace

const OpsKernels& scalarOpsKernels() { return kScalarKernels; }

const OpsKernels& opsKernels(Isa isa) {
  if (isa >= Isa::Avx512 && avx512OpsKernels()) return *avx512OpsKernels();
  if (isa >= Isa::Avx2 && avx2OpsKernels()) return *avx2OpsKernels();
  return kScalarKernels;
}

void rmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  // ggml_compute_forward_rms_norm_f32 then ggml_mul: squares in f32, summed in order in double; the scale in f32.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void ropeAdjacentPairs(float* x, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int32_t position,
                       float freq_base) {
  if (rope_dim <= 0 || rope_dim % 2 != 0 || rope_dim > head_dim)
    throw std::invalid_argument("rope: dimension count " + std::to_string(rope_dim) +
                                " must be even and at most head_dim " + std::to_string(head_dim));
  // cos_sin (rope_dim,) = cos, sin of each pair's angle, built as ggml_rope_cache_init does: theta starts at the
  // position and is multiplied by theta_scale per pair, in f32 (the rounding of that product chain is part of
  // llama.cpp's numerics).
  thread_local std::vector<float> cos_sin;
  cos_sin.resize(static_cast<size_t>(rope_dim));
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(rope_dim));
  float theta = static_cast<float>(position);
  for (int64_t i = 0; i < rope_dim; i += 2) {
    cos_sin[static_cast<size_t>(i)] = std::cos(theta);
    cos_sin[static_cast<size_t>(i + 1)] = std::sin(theta);
    theta *= theta_scale;
  }
  // x (n_heads, head_dim): rotate (x[2i], x[2i+1]) of each head; elements past rope_dim stay as they are.
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    for (int64_t i = 0; i < rope_dim; i += 2) {
      const float c = cos_sin[static_cast<size_t>(i)], s = cos_sin[static_cast<size_t>(i + 1)];
      const float x0 = head[i], x1 = head[i + 1];
      head[i] = x0 * c - x1 * s;
      head[i + 1] = x0 * s + x1 * c;
    }
  }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  opsKernels(detectIsa()).swiglu(gate, up, out, n);
}

void attention(const float* q, const int32_t* q_pos, int64_t n_queries, const f16_t* k, const f16_t* v,
               const int32_t* key_pos, int64_t n_keys, const AttentionShape& shape, float* out, ThreadPool& pool,
               Isa isa, RecentScores* recent) {
  checkAttentionArguments(q, q_pos, n_queries, k, v, key_pos, n_keys, shape, out, recent);
  if (n_queries == 0) return;
  const OpsKernels& kernels = opsKernels(isa);
  const int64_t head_dim = shape.head_dim, group = shape.n_heads / shape.n_kv_heads;
  const int64_t q_stride = shape.n_heads * head_dim, kv_stride = shape.n_kv_heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int threads = pool.size();

  // A cache in position order (the usual case, compressed or not) lets each query stop at its last visible key;
  // otherwise every key is scored and the masked ones set to -inf.
  const bool keys_sorted = std::is_sorted(key_pos, key_pos + n_keys);

  // Work item = (kv head g, tile of consecutive queries, chunk of g's query heads); its rows are those heads of
  // those queries, row r = (t - t0) * heads + h. All rows share kv head g, so the kernels widen each K and V row from
  // f16 once for all of them: a tile takes enough queries for about item_rows rows (prompt processing). Heads are
  // split into chunks only when there would be fewer items than threads (decode with few kv heads).
  const int64_t s_stride = (n_keys + 15) / 16 * 16;  // score rows start on cache lines
  const int64_t item_rows = std::clamp<int64_t>(
      static_cast<int64_t>(kScoreBytes / (static_cast<size_t>(std::max<int64_t>(s_stride, 16)) * sizeof(float))),
      kMinItemRows, kMaxItemRows);
  const int64_t tile = std::clamp<int64_t>(item_rows / group, 1, n_queries);
  const int64_t tiles = (n_queries + tile - 1) / tile;
  const int64_t items_unsplit = tiles * shape.n_kv_heads;
  const int64_t splits = std::min<int64_t>(group, (threads + items_unsplit - 1) / items_unsplit);
  const int64_t chunk_heads = (group + splits - 1) / splits;
  const int64_t n_items = items_unsplit * splits;
  const int64_t max_rows = tile * chunk_heads;
  // Keys query t sees: a prefix when the keys are in position order, else all of them (masked one by one below).
  const auto visibleKeys = [&](int64_t t) -> int64_t {
    return keys_sorted ? std::upper_bound(key_pos, key_pos + n_keys, q_pos[t]) - key_pos : n_keys;
  };

  // partial (slots, n_keys): each slot's share of the recent scores, summed in slot order at the end. Items then go
  // to slots round-robin, so the sums are the same from run to run; otherwise threads take items from a counter (one
  // that the OS runs less takes fewer).
  const bool scoring = recent && recent->first_query < n_queries && n_keys > 0;
  std::atomic<int64_t> next_item{0};
  const float head_mean = 1.0f / static_cast<float>(shape.n_heads);
  thread_local std::vector<float> partials;
  if (scoring) partials.resize(static_cast<size_t>(threads * n_keys));
  float* partial_base = partials.data();

  pool.run([&](int slot, int) {
    // Per-thread scratch (a thread may run several slots), grown to the largest call, then reused. For one item:
    // q16 (rows, head_dim) the queries rounded to f16, s (rows, s_stride) their scores, then probabilities,
    // o (rows, head_dim) their outputs.
    thread_local std::vector<float> q16, s, o;
    q16.resize(static_cast<size_t>(max_rows * head_dim));
    s.resize(static_cast<size_t>(max_rows * s_stride));
    o.resize(static_cast<size_t>(max_rows * head_dim));
    float* partial = scoring ? partial_base + slot * n_keys : nullptr;
    if (partial) std::fill(partial, partial + n_keys, 0.0f);

    const auto nextItem = [&](int64_t item) { return scoring ? item + threads : next_item.fetch_add(1); };
    for (int64_t item = scoring ? slot : next_item.fetch_add(1); item < n_items; item = nextItem(item)) {
      const int64_t chunk = item % splits, t0 = item / splits % tiles * tile, g = item / splits / tiles;
      const int64_t t1 = std::min(n_queries, t0 + tile), h0 = g * group + chunk * chunk_heads;
      const int64_t heads = std::min(chunk_heads, group - chunk * chunk_heads);
      if (heads <= 0) continue;
      const int rows = static_cast<int>((t1 - t0) * heads);
      int64_t n_visible = 0;  // keys any row of the item sees
      for (int64_t t = t0; t < t1; ++t) n_visible = std::max(n_visible, visibleKeys(t));

      // s (rows, n_visible) = q16 . k / sqrt(head_dim)
      for (int64_t t = t0; t < t1; ++t)
        kernels.round_to_f16(q + t * q_stride + h0 * head_dim, q16.data() + (t - t0) * heads * head_dim,
                             heads * head_dim);
      kernels.attention_scores(q16.data(), rows, k + g * head_dim, kv_stride, n_visible, head_dim, scale, s.data(),
                               s_stride);
      // Each row: mask the keys its query does not see (past its prefix when the keys are sorted), softmax (the
      // recent queries add their head-mean share to the key scores), rounded to f16.
      for (int64_t t = t0; t < t1; ++t) {
        float* rows_of_t = s.data() + (t - t0) * heads * s_stride;
        for (int64_t j = keys_sorted ? visibleKeys(t) : 0; j < n_visible; ++j) {
          if (key_pos[j] <= q_pos[t]) continue;
          for (int64_t h = 0; h < heads; ++h) rows_of_t[h * s_stride + j] = -INFINITY;
        }
        const bool scored = partial && t >= recent->first_query;
        const float weight = scored ? recent->query_weight[t - recent->first_query] * head_mean : 0.0f;
        for (int64_t h = 0; h < heads; ++h) kernels.softmax_row(rows_of_t + h * s_stride, n_visible, weight,
                                                                scored ? partial : nullptr);
      }
      // o (rows, head_dim) = s . v, then each query's heads to its output row
      kernels.weighted_sum(s.data(), s_stride, rows, v + g * head_dim, kv_stride, n_visible, head_dim, o.data(),
                           head_dim);
      for (int64_t t = t0; t < t1; ++t)
        std::copy_n(o.data() + (t - t0) * heads * head_dim, heads * head_dim, out + t * q_stride + h0 * head_dim);
    }
  });

  if (scoring) {
    for (int64_t j = 0; j < n_keys; ++j) {
      float sum = 0.0f;
      for (int i = 0; i < threads; ++i) sum += partial_base[i * n_keys + j];
      recent->scores[j] += sum;
    }
  }
}

}  // namespace pc::cpu
