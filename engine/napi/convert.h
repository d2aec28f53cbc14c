// Conversions between engine values and JavaScript values.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/kv/kv_policy.h"
#include "engine/llama_config.h"
#include "engine/tokenizer.h"

namespace pc::napi {

// Integers beyond 2^53 become BigInt so that no metadata value is silently rounded.
Napi::Value toJs(Napi::Env env, const GgufValue& value);
// {version, alignment, fileSize, dataOffset, metadata: {key: value}, tensors: [{name, type, dims, offset, bytes}]}
Napi::Object inspectionToJs(Napi::Env env, const GgufFile& file);
Napi::Object configToJs(Napi::Env env, const LlamaConfig& config);

Napi::Int32Array tokensToJs(Napi::Env env, const std::vector<TokenId>& tokens);
// Accepts an Int32Array or an array of numbers; throws a TypeError naming `what` otherwise.
std::vector<TokenId> tokensFromJs(const Napi::Value& value, const char* what);

// Option readers for `{...}` arguments: absent or undefined gives the fallback; a value of the wrong type throws a
// TypeError naming the option.
Napi::Object optionsArgument(const Napi::CallbackInfo& info, size_t index);
double numberOption(const Napi::Object& options, const char* key, double fallback);
bool boolOption(const Napi::Object& options, const char* key, bool fallback);
std::vector<std::string> stringsOption(const Napi::Object& options, const char* key);
std::string requireString(const Napi::CallbackInfo& info, size_t index, const char* what);

// {policy, targetRatio, recentRatio, decayRatio, layerInterval, minContext, sinkTokens, distanceWeight,
//  decodeCompression, genDecayRatio, genCompressRatio, exceedLength, maxLayerTokens}; absent keys keep defaults.
// Out-of-range values throw an Error naming the option.
KvPolicyConfig kvPolicyFromJs(const Napi::Value& value);
Napi::Object kvPolicyToJs(Napi::Env env, const KvPolicyConfig& config);

}  // namespace pc::napi
