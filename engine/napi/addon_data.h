// Per-environment addon state: the JS classes that worker completions instantiate.
#pragma once

#include <napi.h>

namespace pc::napi {

struct AddonData {
  Napi::FunctionReference model_class;
  Napi::FunctionReference session_class;
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace pc::napi
