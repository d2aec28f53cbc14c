// Module entry: inspect(path), loadModel(path) and planKv(options). Everything heavy runs in PromiseWorker.
#include <napi.h>

#include <memory>
#include <string>

#include "engine/gguf.h"
#include "engine/napi/addon_data.h"
#include "engine/napi/convert.h"
#include "engine/napi/session_wrap.h"
#include "engine/napi/model_wrap.h"
#include "engine/napi/promise_worker.h"

namespace pc::napi {
namespace {

// inspect(path) -> Promise<{version, alignment, metadata, tensors, ...}>: the GGUF header without model validation.
Napi::Value inspect(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "model path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  return PromiseWorker<std::shared_ptr<const GgufFile>>::start(
      info.Env(), [path] { return GgufFile::open(path); },
      [](Napi::Env env, std::shared_ptr<const GgufFile>& file) -> Napi::Value { return inspectionToJs(env, *file); });
}

// planKv({layers, kvDim, tokens, kv}) -> {policy, tokens, config, perLayer: [{tokens, bytes}], bytes, fullBytes, ratio,
// targetReached}:
// what a KV policy keeps for a prompt, without a model (cheap and synchronous; the settings preview uses it).
Napi::Value planKvCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = optionsArgument(info, 0);
  const auto layers = static_cast<int64_t>(numberOption(options, "layers", 0));
  const auto kv_dim = static_cast<int64_t>(numberOption(options, "kvDim", 0));
  const auto tokens = static_cast<int64_t>(numberOption(options, "tokens", -1));
  if (layers <= 0 || kv_dim <= 0 || tokens < 0)
    throw Napi::TypeError::New(env, "planKv needs positive layers and kvDim and a token count");
  const KvPolicyConfig config = kvPolicyFromJs(options.Get("kv"));
  KvPlan plan;
  try {
    plan = planKv(config, layers, tokens);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  const double row_bytes = 2.0 * static_cast<double>(kv_dim) * 2.0;  // K and V rows in f16
  Napi::Object result = Napi::Object::New(env);
  result.Set("policy", kvPolicyName(config.kind));
  result.Set("tokens", static_cast<double>(tokens));
  result.Set("config", kvPolicyToJs(env, plan.resolved));
  Napi::Array per_layer = Napi::Array::New(env, plan.layer_tokens.size());
  for (size_t l = 0; l < plan.layer_tokens.size(); ++l) {
    Napi::Object layer = Napi::Object::New(env);
    layer.Set("tokens", static_cast<double>(plan.layer_tokens[l]));
    layer.Set("bytes", static_cast<double>(plan.layer_tokens[l]) * row_bytes);
    per_layer.Set(static_cast<uint32_t>(l), layer);
  }
  result.Set("perLayer", per_layer);
  result.Set("bytes", static_cast<double>(plan.total_tokens) * row_bytes);
  result.Set("fullBytes", static_cast<double>(tokens * layers) * row_bytes);
  result.Set("ratio", plan.ratio);
  // A pyramid target can be out of reach (shallow models, short prompts): say so rather than pretend.
  result.Set("targetReached", config.target_ratio <= 0 || plan.ratio <= config.target_ratio);
  return result;
}

}  // namespace
}  // namespace pc::napi

// NODE_API_MODULE pastes the initialiser's name into an identifier, so it must be unqualified.
static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  using namespace pc::napi;
  exports.Set("inspect", Napi::Function::New(env, inspect, "inspect"));
  exports.Set("loadModel", Napi::Function::New(env, ModelWrap::load, "loadModel"));
  exports.Set("planKv", Napi::Function::New(env, planKvCall, "planKv"));
  // The classes live in the addon's instance data: worker completions create their instances.
  auto* data = new AddonData();
  data->model_class = Napi::Persistent(ModelWrap::defineClass(env));
  data->session_class = Napi::Persistent(SessionWrap::defineClass(env));
  env.SetInstanceData(data);
  return exports;
}

NODE_API_MODULE(pyramid_coder, initAddon)
