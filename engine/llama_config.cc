#include "engine/llama_config.h"

#include <cmath>
#include <limits>
#include <vector>

namespace pc {
namespace {

constexpr int64_t kMaxLayers = 1024;
// Sizes feed int32 positions and indices in the kernels.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

std::string shapeText(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

std::string fileName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

class LlamaReader {
 public:
  explicit LlamaReader(const GgufFile& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& problem) const { throw GgufError(file_.path() + ": " + problem); }

  int64_t size(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const {
    const int64_t size = fallback ? file_.getInt(key).value_or(*fallback) : file_.requireInt(key);
    if (size < 1 || size > kMaxSize) fail(key + " = " + std::to_string(size) + " is out of range");
    return size;
  }

  double positiveReal(const std::string& key, double fallback) const {
    const double value = file_.getReal(key).value_or(fallback);
    if (!std::isfinite(value) || value <= 0) fail(key + " = " + std::to_string(value) + " must be positive and finite");
    return value;
  }

  enum class Role { Weight, Norm };

  // The tensor, checked to have the shape the metadata implies and a type the kernels compute with. Norm weights
  // are read as plain floats: every llama converter writes them as F32.
  const GgufTensorInfo& tensor(const std::string& name, const std::vector<int64_t>& shape, Role role) const {
    const GgufTensorInfo* tensor = file_.findTensor(name);
    if (tensor == nullptr) fail("missing tensor '" + name + "'");
    if (tensor->dims != shape) {
      fail("tensor '" + name + "' has shape " + shapeText(tensor->dims) + " but the metadata implies " +
           shapeText(shape));
    }
    if (role == Role::Norm && tensor->type() != GgmlType::F32) {
      fail("norm tensor '" + name + "' has type " + ggmlTypeName(tensor->type_id) + "; norm weights must be F32");
    }
    if (!isSupportedWeightType(tensor->type())) {
      fail("tensor '" + name + "' has type " + ggmlTypeName(tensor->type_id) +
           ", which the engine does not support (supported: " + supportedWeightTypeNames() + ")");
    }
    return *tensor;
  }

 private:
  const GgufFile& file_;
};

}  // namespace

LlamaConfig readLlamaConfig(const GgufFile& file) {
  const LlamaReader reader(file);
  const std::string architecture = file.requireString("general.architecture");
  if (architecture != "llama") reader.fail("architecture '" + architecture + "' is not supported (llama only)");

  // Variants of the llama architecture that would load and then compute something silently wrong.
  if (file.getInt("llama.expert_count").value_or(0) > 0) {
    reader.fail("mixture-of-experts llama models (llama.expert_count) are not supported");
  }
  const std::string rope_scaling = file.getString("llama.rope.scaling.type").value_or("none");
  if (rope_scaling != "none" && file.getReal("llama.rope.scaling.factor").value_or(1.0) != 1.0) {
    reader.fail("RoPE scaling '" + rope_scaling + "' is not supported");
  }
  if (file.findTensor("rope_freqs.weight") != nullptr) {
    reader.fail("per-frequency RoPE factors (rope_freqs.weight) are not supported");
  }

  LlamaConfig config;
  config.name = file.getString("general.name").value_or(fileName(file.path()));
  config.context_length = reader.size("llama.context_length");
  config.dim = reader.size("llama.embedding_length");
  config.n_layers = reader.size("llama.block_count");
  config.ffn_dim = reader.size("llama.feed_forward_length");
  config.n_heads = reader.size("llama.attention.head_count");
  config.n_kv_heads = reader.size("llama.attention.head_count_kv", config.n_heads);
  if (config.n_layers > kMaxLayers) {
    reader.fail("llama.block_count = " + std::to_string(config.n_layers) + " exceeds " + std::to_string(kMaxLayers));
  }
  if (config.dim % config.n_heads != 0) {
    reader.fail("llama.embedding_length " + std::to_string(config.dim) + " is not divisible by the head count " +
                std::to_string(config.n_heads));
  }
  if (config.n_heads % config.n_kv_heads != 0) {
    reader.fail("the head count " + std::to_string(config.n_heads) + " is not a multiple of the KV head count " +
                std::to_string(config.n_kv_heads));
  }
  config.head_dim = config.dim / config.n_heads;
  for (const char* key : {"llama.attention.key_length", "llama.attention.value_length"}) {
    const std::optional<int64_t> length = file.getInt(key);
    if (length && *length != config.head_dim) {
      reader.fail(std::string(key) + " = " + std::to_string(*length) +
                  " differs from embedding_length / head_count = " + std::to_string(config.head_dim) +
                  ", which the engine does not support");
    }
  }
  config.rope_dim = reader.size("llama.rope.dimension_count", config.head_dim);
  if (config.rope_dim % 2 != 0 || config.rope_dim > config.head_dim) {
    reader.fail("llama.rope.dimension_count = " + std::to_string(config.rope_dim) +
                " must be even and at most the head size " + std::to_string(config.head_dim));
  }
  config.rope_freq_base = reader.positiveReal("llama.rope.freq_base", 10000.0);
  config.rms_eps = reader.positiveReal("llama.attention.layer_norm_rms_epsilon", 1e-5);

  using Role = LlamaReader::Role;
  const GgufTensorInfo* embedding = file.findTensor("token_embd.weight");
  if (embedding == nullptr) reader.fail("missing tensor 'token_embd.weight'");
  if (embedding->dims.size() != 2 || embedding->dims[1] > kMaxSize) {
    reader.fail("tensor 'token_embd.weight' has shape " + shapeText(embedding->dims) + ", expected [" +
                std::to_string(config.dim) + ", vocabulary size]");
  }
  config.vocab_size = embedding->dims[1];
  reader.tensor("token_embd.weight", {config.dim, config.vocab_size}, Role::Weight);
  if (const GgufValue* tokens = file.getArray("tokenizer.ggml.tokens", GgufValueType::String)) {
    if (static_cast<int64_t>(tokens->items.size()) != config.vocab_size) {
      reader.fail("tokenizer.ggml.tokens has " + std::to_string(tokens->items.size()) +
                  " tokens but token_embd.weight has " + std::to_string(config.vocab_size) + " rows");
    }
  }
  reader.tensor("output_norm.weight", {config.dim}, Role::Norm);
  config.tied_output = file.findTensor("output.weight") == nullptr;
  if (!config.tied_output) reader.tensor("output.weight", {config.dim, config.vocab_size}, Role::Weight);

  const int64_t kv_dim = config.n_kv_heads * config.head_dim;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    reader.tensor(prefix + "attn_norm.weight", {config.dim}, Role::Norm);
    reader.tensor(prefix + "attn_q.weight", {config.dim, config.dim}, Role::Weight);
    reader.tensor(prefix + "attn_k.weight", {config.dim, kv_dim}, Role::Weight);
    reader.tensor(prefix + "attn_v.weight", {config.dim, kv_dim}, Role::Weight);
    reader.tensor(prefix + "attn_output.weight", {config.dim, config.dim}, Role::Weight);
    reader.tensor(prefix + "ffn_norm.weight", {config.dim}, Role::Norm);
    reader.tensor(prefix + "ffn_gate.weight", {config.dim, config.ffn_dim}, Role::Weight);
    reader.tensor(prefix + "ffn_up.weight", {config.dim, config.ffn_dim}, Role::Weight);
    reader.tensor(prefix + "ffn_down.weight", {config.ffn_dim, config.dim}, Role::Weight);
  }
  return config;
}

}  // namespace pc
