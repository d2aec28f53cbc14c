// The pure plan against PYRAMIDINFER.md's golden per-layer lengths, the target-ratio solver, the row ranking, and
// the compressor's decode-time, budget and cap rules on a synthetic cache.
#include "engine/kv/kv_policy.h"

#include <cstdio>
#include <numeric>
#include <vector>

#include "engine/kv/kv_compressor.h"
#include "engine/testing/check.h"

namespace pc {
namespace {

KvPolicyConfig pyramid() {
  KvPolicyConfig config;
  config.kind = KvPolicyKind::Pyramid;
  return config;
}

PC_TEST(plan_matches_the_golden_lengths_of_the_7b_defaults) {
  const std::vector<int64_t> golden_2048 = {2048, 2048, 2047, 2045, 2041, 2034, 2024, 2010, 1991, 1967, 1938,
                                            1904, 1864, 1819, 1769, 1714, 1655, 1592, 1527, 1460, 1392, 1324,
                                            1256, 1190, 1126, 1064, 1006, 951,  900,  852,  808,  768};
  const std::vector<int64_t> golden_1024 = {1024, 1024, 1023, 1022, 1020, 1016, 1011, 1004, 994, 982, 967,
                                            950,  930,  907,  882,  854,  824,  793,  760,  726, 692, 658,
                                            624,  591,  559,  528,  499,  472,  446,  422,  400, 380};
  PC_CHECK_EQ(planKv(pyramid(), 32, 2048).layer_tokens, golden_2048);
  PC_CHECK_EQ(planKv(pyramid(), 32, 1024).layer_tokens, golden_1024);
}

PC_TEST(full_keeps_everything_and_uniform_policies_keep_their_budget) {
  KvPolicyConfig config;
  PC_CHECK_EQ(planKv(config, 4, 100).total_tokens, 400);
  config.kind = KvPolicyKind::Streaming;
  config.target_ratio = 0.3;
  PC_CHECK_EQ(planKv(config, 4, 1000).layer_tokens, (std::vector<int64_t>{300, 300, 300, 300}));
  // Never fewer than min_context rows, never more than the prompt.
  PC_CHECK_EQ(planKv(config, 2, 100).layer_tokens, (std::vector<int64_t>{64, 64}));
  PC_CHECK_EQ(planKv(config, 2, 40).layer_tokens, (std::vector<int64_t>{40, 40}));
}

PC_TEST(target_ratio_solves_the_decay_and_stays_within_the_target) {
  for (int64_t tokens : {1024, 4096, 8192}) {
    for (double target : {0.45, 0.6, 0.8}) {
      KvPolicyConfig config = pyramid();
      config.target_ratio = target;
      const KvPlan plan = planKv(config, 32, tokens);
      if (plan.ratio > target) std::printf("%lld tokens, target %.2f: %.4f\n", static_cast<long long>(tokens), target, plan.ratio);
      PC_CHECK(plan.ratio <= target);
      PC_CHECK(plan.ratio > target - 0.02);
      PC_CHECK(plan.resolved.decay_ratio >= 0 && plan.resolved.decay_ratio < 1);
    }
  }
  // A target no schedule reaches gives decay 0 with the recent window as configured (not an error, not a window
  // shrunk for nothing); one that a smaller window reaches shrinks it.
  KvPolicyConfig config = pyramid();
  config.target_ratio = 0.05;
  PC_CHECK_EQ(planKv(config, 32, 2048).resolved.decay_ratio, 0.0);
  PC_CHECK_EQ(planKv(config, 32, 2048).resolved.recent_ratio, 0.2);
  config.target_ratio = 0.45;
  const KvPlan narrowed = planKv(config, 32, 1024);
  PC_CHECK(narrowed.resolved.recent_ratio < 0.2 && narrowed.resolved.recent_ratio > 0.05);
  PC_CHECK(narrowed.ratio <= 0.45);
}

PC_TEST(layer_interval_and_min_context_follow_the_reference) {
  KvPolicyConfig config = pyramid();
  config.layer_interval = 2;
  config.decay_ratio = 0.5;
  const std::vector<int64_t> lengths = planKv(config, 8, 1000).layer_tokens;
  // Selection only after even layers (layer l's selection sets the length of layer l + 1; s_0 = 1).
  PC_CHECK_EQ(lengths[1], lengths[2]);
  PC_CHECK_EQ(lengths[3], lengths[4]);
  PC_CHECK(lengths[2] > lengths[3]);
  PC_CHECK(lengths[4] > lengths[5]);
  // 100 tokens, window 21: 79 context tokens shrink until a cut would leave <= 64 of them (69 * 0.93 -> 64).
  config.layer_interval = 1;
  config.decay_ratio = 0.9;
  PC_CHECK_EQ(planKv(config, 8, 100).layer_tokens, (std::vector<int64_t>{100, 100, 99, 97, 94, 90, 90, 90}));
}

PC_TEST(bad_options_are_named) {
  KvPolicyConfig config = pyramid();
  config.recent_ratio = 1.5;
  PC_CHECK_THROWS(validateKvPolicy(config), "recentRatio");
  config = pyramid();
  config.layer_interval = 0;
  PC_CHECK_THROWS(validateKvPolicy(config), "layerInterval");
  PC_CHECK_THROWS(parseKvPolicy("snap"), "use full, pyramid, streaming or h2o");
}

PC_TEST(rows_to_keep_ranks_by_score_with_sinks_first_and_keeps_order) {
  const std::vector<float> scores = {0.0f, 0.5f, 0.1f, 0.9f, 0.5f, 0.2f};
  const std::vector<int32_t> positions = {0, 1, 2, 3, 4, 5};
  PC_CHECK_EQ(rowsToKeep(scores.data(), positions.data(), 6, 3, 1), (std::vector<int64_t>{0, 1, 3}));
  PC_CHECK_EQ(rowsToKeep(scores.data(), positions.data(), 6, 4, 0), (std::vector<int64_t>{1, 3, 4, 5}));
  // Without scores the newest rows win (streaming).
  PC_CHECK_EQ(rowsToKeep(nullptr, positions.data(), 6, 3, 1), (std::vector<int64_t>{0, 4, 5}));
  PC_CHECK_EQ(rowsToKeep(nullptr, positions.data(), 6, 9, 1).size(), size_t{6});
}

// A cache of `layers` layers with rows at positions [0, n), scored by position parity so ranking is predictable.
KvCache syntheticCache(int64_t layers, int64_t n) {
  KvCache cache(layers, 2);
  std::vector<float> kv(static_cast<size_t>(2 * n), 0.5f);
  std::vector<int32_t> positions(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), 0);
  for (int64_t l = 0; l < layers; ++l) {
    cache.layer(l).append(kv.data(), kv.data(), positions.data(), n);
    for (int64_t i = 0; i < n; ++i) cache.layer(l).scores()[i] = static_cast<float>(i % 2);
  }
  return cache;
}

void appendToken(KvCache& cache, int32_t position) {
  const float row[2] = {0.25f, 0.25f};
  for (int64_t l = 0; l < cache.layerCount(); ++l) cache.layer(l).append(row, row, &position, 1);
}

PC_TEST(decode_compression_reduces_chunks_leaving_the_recent_window) {
  KvPolicyConfig config = pyramid();
  config.decay_ratio = 1.0;  // no prefill selection: every layer holds the prompt
  KvCompressor compressor(config, 2);
  KvCache cache = syntheticCache(2, 100);  // window 1 + 20
  compressor.beginPrompt(0, 100);
  compressor.compress(cache);  // settles the 79 rows before the window
  PC_CHECK_EQ(cache.layer(0).length(), 100);
  // Right after the prompt 1 token is outside the R = 20 newest; compression waits for 16 of them.
  for (int32_t p = 100; p < 114; ++p) {
    compressor.beginDecode();
    appendToken(cache, p);
    compressor.compress(cache);
  }
  PC_CHECK_EQ(cache.layer(0).length(), 114);
  compressor.beginDecode();
  appendToken(cache, 114);
  compressor.compress(cache);
  // The 16 rows after the settled ones keep decodeChunkKeep: 14 in layer 0 (g = 1), 7 in layer 1 (g = 0.55).
  PC_CHECK_EQ(decodeChunkKeep(config, 0, 2), 14);
  PC_CHECK_EQ(decodeChunkKeep(config, 1, 2), 7);
  PC_CHECK_EQ(cache.layer(0).length(), 115 - 2);
  PC_CHECK_EQ(cache.layer(1).length(), 115 - 9);
  // The chunk (positions 79..94) keeps its best-scored rows: the odd positions, older first; order is kept.
  const int32_t* kept = cache.layer(1).positions();
  for (int64_t i = 1; i < cache.layer(1).length(); ++i) PC_CHECK(kept[i] > kept[i - 1]);
  PC_CHECK_EQ(kept[78], 78);
  PC_CHECK_EQ(kept[79], 79);
  PC_CHECK_EQ(kept[80], 81);
  PC_CHECK_EQ(kept[85], 91);
  PC_CHECK_EQ(kept[86], 95);
}

PC_TEST(streaming_and_h2o_keep_their_share_while_generating) {
  for (KvPolicyKind kind : {KvPolicyKind::Streaming, KvPolicyKind::H2O}) {
    KvPolicyConfig config;
    config.kind = kind;
    config.target_ratio = 0.5;
    config.min_context = 8;
    KvCompressor compressor(config, 3);
    KvCache cache = syntheticCache(3, 40);
    compressor.beginPrompt(0, 40);
    compressor.compress(cache);
    for (int64_t l = 0; l < 3; ++l) PC_CHECK_EQ(cache.layer(l).length(), 20);
    for (int32_t p = 40; p < 60; ++p) {
      compressor.beginDecode();
      appendToken(cache, p);
      compressor.compress(cache);
      PC_CHECK_EQ(cache.layer(2).length(), (p + 1) / 2);
      PC_CHECK_EQ(cache.layer(2).positions()[cache.layer(2).length() - 1], p);  // the newest token is always kept
    }
    if (kind == KvPolicyKind::Streaming) {
      for (int32_t sink = 0; sink < 4; ++sink) PC_CHECK_EQ(cache.layer(0).positions()[sink], sink);
      PC_CHECK_EQ(cache.layer(0).positions()[4], 60 - 30 + 4);
    }
  }
}

PC_TEST(the_per_layer_cap_bounds_every_policy) {
  for (KvPolicyKind kind : {KvPolicyKind::Pyramid, KvPolicyKind::Streaming, KvPolicyKind::H2O}) {
    KvPolicyConfig config;
    config.kind = kind;
    config.max_layer_tokens = 50;
    config.target_ratio = kind == KvPolicyKind::Pyramid ? 0 : 1.0;
    KvCompressor compressor(config, 2);
    KvCache cache = syntheticCache(2, 40);
    compressor.beginPrompt(0, 40);
    compressor.compress(cache);
    for (int32_t p = 40; p < 200; ++p) {
      compressor.beginDecode();
      appendToken(cache, p);
      compressor.compress(cache);
      PC_CHECK(cache.layer(0).length() <= 50);
      PC_CHECK_EQ(cache.layer(0).positions()[cache.layer(0).length() - 1], p);
    }
  }
}

}  // namespace
}  // namespace pc
