// The JavaScript face of a loaded model. Every method returns a promise whose work runs off the JS thread and
// holds its own reference to the engine model, so dispose() during a call is safe: the model is freed when the
// last call in flight finishes, and calls made after dispose() reject with a clear error.
#pragma once

#include <napi.h>

#include <memory>

#include "engine/model.h"

namespace pc::napi {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function defineClass(Napi::Env env);
  // loadModel(path) -> Promise<Model>
  static Napi::Value load(const Napi::CallbackInfo& info);

  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<const Model> model(Napi::Env env) const;  // throws once disposed

  Napi::Value tokenize(const Napi::CallbackInfo& info);
  Napi::Value detokenize(const Napi::CallbackInfo& info);
  Napi::Value tokenPieces(const Napi::CallbackInfo& info);
  Napi::Value infillPrompt(const Napi::CallbackInfo& info);
  Napi::Value chatPrompt(const Napi::CallbackInfo& info);
  Napi::Value createSession(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const Model> model_;
};

}  // namespace pc::napi
