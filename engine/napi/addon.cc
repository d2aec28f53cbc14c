// Module entry: inspect(path) and loadModel(path). Everything heavy runs in PromiseWorker.
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

}  // namespace
}  // namespace pc::napi

// NODE_API_MODULE pastes the initialiser's name into an identifier, so it must be unqualified.
static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  using namespace pc::napi;
  exports.Set("inspect", Napi::Function::New(env, inspect, "inspect"));
  exports.Set("loadModel", Napi::Function::New(env, ModelWrap::load, "loadModel"));
  // The classes live in the addon's instance data: worker completions create their instances.
  auto* data = new AddonData();
  data->model_class = Napi::Persistent(ModelWrap::defineClass(env));
  data->session_class = Napi::Persistent(SessionWrap::defineClass(env));
  env.SetInstanceData(data);
  return exports;
}

NODE_API_MODULE(pyramid_coder, initAddon)
