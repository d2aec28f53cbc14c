#include "engine/llama_config.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/testing/check.h"
#include "engine/testing/gguf_builder.h"

namespace pc {
namespace {

using testing::GgufBuilder;

// A complete llama model small enough to build per test, described as editable lists: a test changes or removes
// one key or tensor and builds.
struct TinyLlama {
  using Tensor = testing::LlamaTensor;

  std::string architecture = "llama";
  std::map<std::string, uint64_t> sizes;
  std::map<std::string, double> reals;
  std::vector<Tensor> tensors;
  int64_t token_count;

  explicit TinyLlama(uint64_t dim = 64, uint64_t ffn = 96, GgmlType weight_type = GgmlType::Q8_0) {
    const uint64_t heads = 4, kv_heads = 2, layers = 2, vocab = 40;
    sizes = {{"llama.context_length", 256},           {"llama.embedding_length", dim},
             {"llama.block_count", layers},             {"llama.feed_forward_length", ffn},
             {"llama.attention.head_count", heads},     {"llama.attention.head_count_kv", kv_heads}};
    token_count = vocab;
    tensors = testing::llamaTensors({dim, dim / heads * kv_heads, ffn, layers, vocab}, weight_type);
  }

  Tensor& tensor(const std::string& name) {
    return *std::find_if(tensors.begin(), tensors.end(), [&](const Tensor& t) { return t.name == name; });
  }
  void removeTensor(const std::string& name) {
    tensors.erase(std::find_if(tensors.begin(), tensors.end(), [&](const Tensor& t) { return t.name == name; }));
  }

  GgufBuilder builder() const {
    GgufBuilder builder;
    builder.string("general.architecture", architecture);
    for (const auto& [key, value] : sizes) builder.scalar(key, GgufValueType::U32, static_cast<uint32_t>(value));
    for (const auto& [key, value] : reals) builder.scalar(key, GgufValueType::F32, static_cast<float>(value));
    std::vector<std::string> tokens;
    for (int64_t i = 0; i < token_count; ++i) tokens.push_back("t" + std::to_string(i));
    builder.array("tokenizer.ggml.tokens", GgufValueType::String, tokens);
    for (const Tensor& tensor : tensors) builder.tensor(tensor.name, tensor.dims, tensor.type);
    return builder;
  }

  LlamaConfig read() const { return readLlamaConfig(*GgufFile::fromBytes(builder().build(), "tiny.gguf")); }
};

PC_TEST(reads_a_complete_model) {
  TinyLlama model;
  model.reals = {{"llama.rope.freq_base", 1e6}, {"llama.attention.layer_norm_rms_epsilon", 1e-6}};
  const LlamaConfig config = model.read();
  PC_CHECK_EQ(config.name, std::string("tiny.gguf"));
  PC_CHECK_EQ(config.context_length, 256);
  PC_CHECK_EQ(config.dim, 64);
  PC_CHECK_EQ(config.n_layers, 2);
  PC_CHECK_EQ(config.ffn_dim, 96);
  PC_CHECK_EQ(config.n_heads, 4);
  PC_CHECK_EQ(config.n_kv_heads, 2);
  PC_CHECK_EQ(config.head_dim, 16);
  PC_CHECK_EQ(config.rope_dim, 16);
  PC_CHECK_EQ(config.rope_freq_base, 1e6);
  PC_CHECK(std::fabs(config.rms_eps - 1e-6) < 1e-12);  // stored as f32
  PC_CHECK_EQ(config.vocab_size, 40);
  PC_CHECK(!config.tied_output);
}

PC_TEST(optional_keys_take_their_defaults) {
  TinyLlama model;
  model.sizes.erase("llama.attention.head_count_kv");
  for (TinyLlama::Tensor& tensor : model.tensors) {
    if (tensor.name.find("attn_k") != std::string::npos || tensor.name.find("attn_v") != std::string::npos) {
      tensor.dims[1] = 64;  // without head_count_kv there are as many KV heads as heads
    }
  }
  model.removeTensor("output.weight");
  GgufBuilder builder = model.builder();
  builder.string("general.name", "Tiny Llama");
  const LlamaConfig config = readLlamaConfig(*GgufFile::fromBytes(builder.build(), "/models/tiny.gguf"));
  PC_CHECK_EQ(config.name, std::string("Tiny Llama"));
  PC_CHECK_EQ(config.n_kv_heads, 4);
  PC_CHECK_EQ(config.rope_dim, config.head_dim);
  PC_CHECK_EQ(config.rope_freq_base, 10000.0);
  PC_CHECK_EQ(config.rms_eps, 1e-5);
  PC_CHECK(config.tied_output);

  TinyLlama partial_rope;
  partial_rope.sizes["llama.rope.dimension_count"] = 8;
  PC_CHECK_EQ(partial_rope.read().rope_dim, 8);
  TinyLlama in_folder;
  PC_CHECK_EQ(readLlamaConfig(*GgufFile::fromBytes(in_folder.builder().build(), "/models/code.gguf")).name,
              std::string("code.gguf"));
}

PC_TEST(reads_the_real_model) {
  const auto file = GgufFile::open(PC_SOURCE_DIR "/media/models/tiny-code-q8_0.gguf");
  const LlamaConfig config = readLlamaConfig(*file);
  PC_CHECK_EQ(config.dim, 192);
  PC_CHECK_EQ(config.n_layers, 6);
  PC_CHECK_EQ(config.n_heads, 6);
  PC_CHECK_EQ(config.n_kv_heads, 2);
  PC_CHECK_EQ(config.head_dim, 32);
  PC_CHECK_EQ(config.rope_dim, 32);
  PC_CHECK_EQ(config.vocab_size, 32016);
  PC_CHECK(config.context_length > 0);
  PC_CHECK(config.ffn_dim > 0);
  PC_CHECK(config.rope_freq_base > 0);
  PC_CHECK(config.rms_eps > 0 && config.rms_eps < 1e-3);
  PC_CHECK(!config.name.empty());
}

PC_TEST(accepts_every_supported_weight_type) {
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                        GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    PC_CHECK(isSupportedWeightType(type));
    const TinyLlama model(256, 256, type);  // K-quant rows are multiples of 256
    PC_CHECK_EQ(model.read().dim, 256);
  }
  // A Q4_K_M-style mix: Q6_K for the LM head and some attn_v / ffn_down.
  TinyLlama mixed(256, 256, GgmlType::Q4_K);
  mixed.tensor("output.weight").type = GgmlType::Q6_K;
  mixed.tensor("blk.0.attn_v.weight").type = GgmlType::Q6_K;
  mixed.tensor("blk.1.ffn_down.weight").type = GgmlType::Q6_K;
  PC_CHECK_EQ(mixed.read().n_layers, 2);
}

PC_TEST(refuses_other_architectures) {
  TinyLlama gemma;
  gemma.architecture = "gemma";
  PC_CHECK_THROWS(gemma.read(), "tiny.gguf: architecture 'gemma' is not supported (llama only)");
  const auto no_architecture = GgufFile::fromBytes(GgufBuilder().build(), "empty.gguf");
  PC_CHECK_THROWS(readLlamaConfig(*no_architecture), "empty.gguf: missing metadata key 'general.architecture'");
}

PC_TEST(requires_each_hyperparameter) {
  for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                          "llama.feed_forward_length", "llama.attention.head_count"}) {
    TinyLlama model;
    model.sizes.erase(key);
    PC_CHECK_THROWS(model.read(), std::string("tiny.gguf: missing metadata key '") + key + "'");
  }
}

PC_TEST(refuses_inconsistent_hyperparameters) {
  auto withSize = [](const std::string& key, uint64_t value) {
    TinyLlama model;
    model.sizes[key] = value;
    return model;
  };
  PC_CHECK_THROWS(withSize("llama.block_count", 0).read(), "llama.block_count = 0 is out of range");
  PC_CHECK_THROWS(withSize("llama.block_count", 2000).read(), "llama.block_count = 2000 exceeds 1024");
  PC_CHECK_THROWS(withSize("llama.context_length", 0).read(), "llama.context_length = 0 is out of range");
  PC_CHECK_THROWS(withSize("llama.attention.head_count", 5).read(),
                  "llama.embedding_length 64 is not divisible by the head count 5");
  PC_CHECK_THROWS(withSize("llama.attention.head_count_kv", 3).read(),
                  "the head count 4 is not a multiple of the KV head count 3");
  PC_CHECK_THROWS(withSize("llama.rope.dimension_count", 7).read(),
                  "llama.rope.dimension_count = 7 must be even and at most the head size 16");
  PC_CHECK_THROWS(withSize("llama.rope.dimension_count", 32).read(), "llama.rope.dimension_count = 32");
  PC_CHECK_THROWS(withSize("llama.attention.key_length", 32).read(),
                  "llama.attention.key_length = 32 differs from embedding_length / head_count = 16");
  PC_CHECK_EQ(withSize("llama.attention.value_length", 16).read().head_dim, 16);

  TinyLlama negative;
  negative.sizes.erase("llama.embedding_length");
  GgufBuilder builder = negative.builder();
  builder.scalar("llama.embedding_length", GgufValueType::I32, int32_t{-64});
  PC_CHECK_THROWS(readLlamaConfig(*GgufFile::fromBytes(builder.build(), "tiny.gguf")),
                  "llama.embedding_length = -64 is out of range");
  TinyLlama as_string;
  as_string.sizes.erase("llama.block_count");
  builder = as_string.builder();
  builder.string("llama.block_count", "2");
  PC_CHECK_THROWS(readLlamaConfig(*GgufFile::fromBytes(builder.build(), "tiny.gguf")),
                  "metadata key 'llama.block_count' has type string, expected an integer");

  for (double bad : {0.0, -1.0, std::nan("")}) {
    TinyLlama model;
    model.reals["llama.rope.freq_base"] = bad;
    PC_CHECK_THROWS(model.read(), "llama.rope.freq_base = ");
    model.reals = {{"llama.attention.layer_norm_rms_epsilon", bad}};
    PC_CHECK_THROWS(model.read(), "llama.attention.layer_norm_rms_epsilon = ");
  }
}

PC_TEST(refuses_llama_variants_it_would_compute_wrongly) {
  TinyLlama experts;
  experts.sizes["llama.expert_count"] = 8;
  PC_CHECK_THROWS(experts.read(), "mixture-of-experts llama models (llama.expert_count) are not supported");
  TinyLlama no_experts;
  no_experts.sizes["llama.expert_count"] = 0;
  PC_CHECK_EQ(no_experts.read().dim, 64);

  GgufBuilder scaled = TinyLlama().builder();
  scaled.string("llama.rope.scaling.type", "linear").scalar("llama.rope.scaling.factor", GgufValueType::F32, 4.0f);
  PC_CHECK_THROWS(readLlamaConfig(*GgufFile::fromBytes(scaled.build(), "tiny.gguf")),
                  "RoPE scaling 'linear' is not supported");
  GgufBuilder unscaled = TinyLlama().builder();
  unscaled.string("llama.rope.scaling.type", "linear").scalar("llama.rope.scaling.factor", GgufValueType::F32, 1.0f);
  PC_CHECK_EQ(readLlamaConfig(*GgufFile::fromBytes(unscaled.build(), "tiny.gguf")).dim, 64);

  TinyLlama rope_freqs;
  rope_freqs.tensors.push_back({"rope_freqs.weight", {8}, GgmlType::F32});
  PC_CHECK_THROWS(rope_freqs.read(), "rope_freqs.weight");
}

PC_TEST(requires_every_tensor) {
  TinyLlama full;
  for (const TinyLlama::Tensor& tensor : full.tensors) {
    if (tensor.name == "output.weight") continue;  // optional: tied to token_embd
    TinyLlama model;
    model.removeTensor(tensor.name);
    PC_CHECK_THROWS(model.read(), "tiny.gguf: missing tensor '" + tensor.name + "'");
  }
}

PC_TEST(checks_every_shape_against_the_metadata) {
  {
    TinyLlama model;
    model.tensor("blk.0.attn_k.weight").dims = {64, 64};
    PC_CHECK_THROWS(model.read(),
                    "tiny.gguf: tensor 'blk.0.attn_k.weight' has shape [64, 64] but the metadata implies [64, 32]");
  }
  {
    TinyLlama model;
    model.tensor("blk.1.ffn_down.weight").dims = {64, 96};
    PC_CHECK_THROWS(model.read(),
                    "tensor 'blk.1.ffn_down.weight' has shape [64, 96] but the metadata implies [96, 64]");
  }
  {
    TinyLlama model;
    model.tensor("blk.1.attn_norm.weight").dims = {64, 1};
    PC_CHECK_THROWS(model.read(), "tensor 'blk.1.attn_norm.weight' has shape [64, 1] but the metadata implies [64]");
  }
  {
    TinyLlama model;
    model.tensor("output.weight").dims = {64, 32};
    PC_CHECK_THROWS(model.read(), "tensor 'output.weight' has shape [64, 32] but the metadata implies [64, 40]");
  }
  {
    TinyLlama model;
    model.tensor("token_embd.weight").dims = {128, 40};
    PC_CHECK_THROWS(model.read(), "tensor 'token_embd.weight' has shape [128, 40] but the metadata implies [64, 40]");
  }
  {
    TinyLlama model;
    model.tensor("token_embd.weight").dims = {64 * 40};
    PC_CHECK_THROWS(model.read(), "tensor 'token_embd.weight' has shape [2560], expected [64, vocabulary size]");
  }
  {
    TinyLlama model;
    model.token_count = 39;
    PC_CHECK_THROWS(model.read(), "tokenizer.ggml.tokens has 39 tokens but token_embd.weight has 40 rows");
  }
}

PC_TEST(refuses_unsupported_tensor_types) {
  {
    TinyLlama model(256, 256, GgmlType::Q4_K);
    model.tensor("blk.1.ffn_up.weight").type = GgmlType::Q2_K;
    PC_CHECK_THROWS(model.read(),
                    "tiny.gguf: tensor 'blk.1.ffn_up.weight' has type Q2_K, which the engine does not support "
                    "(supported: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16)");
  }
  for (GgmlType type : {GgmlType::Q8_1, GgmlType::Q3_K, GgmlType::Q8_K}) PC_CHECK(!isSupportedWeightType(type));
  {
    TinyLlama model;
    model.tensor("output_norm.weight").type = GgmlType::F16;
    PC_CHECK_THROWS(model.read(), "norm tensor 'output_norm.weight' has type F16; norm weights must be F32");
  }
}

}  // namespace
}  // namespace pc
