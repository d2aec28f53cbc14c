#include "engine/napi/convert.h"

#include <cmath>
#include <cstring>
#include <string>

namespace pc::napi {
namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

Napi::Value integerToJs(Napi::Env env, const GgufValue& value) {
  if (value.integer_overflows) return Napi::BigInt::New(env, value.unsigned_integer);
  if (value.integer > kMaxSafeInteger || value.integer < -kMaxSafeInteger) return Napi::BigInt::New(env, value.integer);
  return Napi::Number::New(env, static_cast<double>(value.integer));
}

Napi::Value uint64ToJs(Napi::Env env, uint64_t value) {
  if (value > static_cast<uint64_t>(kMaxSafeInteger)) return Napi::BigInt::New(env, value);
  return Napi::Number::New(env, static_cast<double>(value));
}

}  // namespace

Napi::Value toJs(Napi::Env env, const GgufValue& value) {
  if (value.isInteger()) return integerToJs(env, value);
  switch (value.type) {
    case GgufValueType::F32:
    case GgufValueType::F64:
      return Napi::Number::New(env, value.real);
    case GgufValueType::Bool:
      return Napi::Boolean::New(env, value.boolean);
    case GgufValueType::String:
      return Napi::String::New(env, value.string);
    case GgufValueType::Array: {
      Napi::Array items = Napi::Array::New(env, value.items.size());
      for (size_t i = 0; i < value.items.size(); ++i) items.Set(static_cast<uint32_t>(i), toJs(env, value.items[i]));
      return items;
    }
    default:
      throw Napi::Error::New(env, std::string("unexpected GGUF value type ") + ggufTypeName(value.type));
  }
}

Napi::Object inspectionToJs(Napi::Env env, const GgufFile& file) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("path", file.path());
  result.Set("version", file.version());
  result.Set("alignment", uint64ToJs(env, file.alignment()));
  result.Set("fileSize", uint64ToJs(env, file.fileSize()));
  result.Set("dataOffset", uint64ToJs(env, file.dataOffset()));

  Napi::Object metadata = Napi::Object::New(env);
  Napi::Object metadata_types = Napi::Object::New(env);
  for (const GgufKeyValue& entry : file.metadata()) {
    metadata.Set(entry.key, toJs(env, entry.value));
    std::string type = ggufTypeName(entry.value.type);
    if (entry.value.type == GgufValueType::Array) type += std::string("<") + ggufTypeName(entry.value.element_type) + ">";
    metadata_types.Set(entry.key, type);
  }
  result.Set("metadata", metadata);
  result.Set("metadataTypes", metadata_types);

  Napi::Array tensors = Napi::Array::New(env, file.tensors().size());
  uint32_t index = 0;
  for (const GgufTensorInfo& tensor : file.tensors()) {
    Napi::Object info = Napi::Object::New(env);
    info.Set("name", tensor.name);
    info.Set("type", ggmlTypeName(tensor.type_id));
    Napi::Array dims = Napi::Array::New(env, tensor.dims.size());
    for (size_t d = 0; d < tensor.dims.size(); ++d) dims.Set(static_cast<uint32_t>(d), static_cast<double>(tensor.dims[d]));
    info.Set("dims", dims);
    info.Set("offset", uint64ToJs(env, tensor.offset));
    info.Set("bytes", uint64ToJs(env, tensor.byte_size));
    tensors.Set(index++, info);
  }
  result.Set("tensors", tensors);
  return result;
}

Napi::Object configToJs(Napi::Env env, const LlamaConfig& config) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", config.name);
  result.Set("contextLength", static_cast<double>(config.context_length));
  result.Set("dim", static_cast<double>(config.dim));
  result.Set("layers", static_cast<double>(config.n_layers));
  result.Set("ffnDim", static_cast<double>(config.ffn_dim));
  result.Set("heads", static_cast<double>(config.n_heads));
  result.Set("kvHeads", static_cast<double>(config.n_kv_heads));
  result.Set("headDim", static_cast<double>(config.head_dim));
  result.Set("ropeDim", static_cast<double>(config.rope_dim));
  result.Set("ropeFreqBase", config.rope_freq_base);
  result.Set("rmsEps", config.rms_eps);
  result.Set("vocabSize", static_cast<double>(config.vocab_size));
  result.Set("tiedOutput", config.tied_output);
  return result;
}

Napi::Int32Array tokensToJs(Napi::Env env, const std::vector<TokenId>& tokens) {
  Napi::Int32Array array = Napi::Int32Array::New(env, tokens.size());
  if (!tokens.empty()) std::memcpy(array.Data(), tokens.data(), tokens.size() * sizeof(TokenId));
  return array;
}

std::vector<TokenId> tokensFromJs(const Napi::Value& value, const char* what) {
  Napi::Env env = value.Env();
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array array = value.As<Napi::Int32Array>();
    return std::vector<TokenId>(array.Data(), array.Data() + array.ElementLength());
  }
  if (!value.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an Int32Array or an array of token ids");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<TokenId> tokens(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value item = array.Get(i);
    double id = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : NAN;
    if (!(id >= 0 && id <= INT32_MAX) || std::floor(id) != id)
      throw Napi::TypeError::New(env, std::string(what) + "[" + std::to_string(i) + "] is not a token id");
    tokens[i] = static_cast<TokenId>(id);
  }
  return tokens;
}

Napi::Object optionsArgument(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined() || info[index].IsNull()) return Napi::Object::New(info.Env());
  if (!info[index].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  return info[index].As<Napi::Object>();
}

double numberOption(const Napi::Object& options, const char* key, double fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsNumber() || std::isnan(value.As<Napi::Number>().DoubleValue()))
    throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

bool boolOption(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsBoolean()) throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::vector<std::string> stringsOption(const Napi::Object& options, const char* key) {
  Napi::Value value = options.Get(key);
  std::vector<std::string> strings;
  if (value.IsUndefined() || value.IsNull()) return strings;
  if (!value.IsArray()) throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be an array of strings");
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be an array of strings");
    strings.push_back(item.As<Napi::String>().Utf8Value());
  }
  return strings;
}

std::string requireString(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || !info[index].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[index].As<Napi::String>().Utf8Value();
}

KvPolicyConfig kvPolicyFromJs(const Napi::Value& value) {
  Napi::Env env = value.Env();
  KvPolicyConfig config;
  if (value.IsUndefined() || value.IsNull()) return config;
  if (!value.IsObject()) throw Napi::TypeError::New(env, "option kv must be an object");
  Napi::Object options = value.As<Napi::Object>();
  Napi::Value policy = options.Get("policy");
  try {
    if (!policy.IsUndefined() && !policy.IsNull()) {
      if (!policy.IsString()) throw Napi::TypeError::New(env, "option kv.policy must be a string");
      config.kind = parseKvPolicy(policy.As<Napi::String>().Utf8Value());
    }
    const auto count = [&](const char* key, int64_t fallback) {
      return static_cast<int64_t>(numberOption(options, key, static_cast<double>(fallback)));
    };
    config.target_ratio = numberOption(options, "targetRatio", config.target_ratio);
    config.recent_ratio = numberOption(options, "recentRatio", config.recent_ratio);
    config.decay_ratio = numberOption(options, "decayRatio", config.decay_ratio);
    config.layer_interval = count("layerInterval", config.layer_interval);
    config.min_context = count("minContext", config.min_context);
    config.sink_tokens = count("sinkTokens", config.sink_tokens);
    config.distance_weight = numberOption(options, "distanceWeight", config.distance_weight);
    config.decode_compression = boolOption(options, "decodeCompression", config.decode_compression);
    config.gen_decay_ratio = numberOption(options, "genDecayRatio", config.gen_decay_ratio);
    config.gen_compress_ratio = numberOption(options, "genCompressRatio", config.gen_compress_ratio);
    config.exceed_length = count("exceedLength", config.exceed_length);
    config.max_layer_tokens = count("maxLayerTokens", config.max_layer_tokens);
    validateKvPolicy(config);
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, e.what());
  }
  return config;
}

Napi::Object kvPolicyToJs(Napi::Env env, const KvPolicyConfig& config) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("policy", kvPolicyName(config.kind));
  result.Set("targetRatio", config.target_ratio);
  result.Set("recentRatio", config.recent_ratio);
  result.Set("decayRatio", config.decay_ratio);
  result.Set("layerInterval", static_cast<double>(config.layer_interval));
  result.Set("minContext", static_cast<double>(config.min_context));
  result.Set("sinkTokens", static_cast<double>(config.sink_tokens));
  result.Set("distanceWeight", config.distance_weight);
  result.Set("decodeCompression", config.decode_compression);
  result.Set("genDecayRatio", config.gen_decay_ratio);
  result.Set("genCompressRatio", config.gen_compress_ratio);
  result.Set("exceedLength", static_cast<double>(config.exceed_length));
  result.Set("maxLayerTokens", static_cast<double>(config.max_layer_tokens));
  return result;
}

}  // namespace pc::napi
