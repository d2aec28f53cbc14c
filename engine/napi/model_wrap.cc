#include "engine/napi/model_wrap.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/napi/addon_data.h"
#include "engine/napi/convert.h"
#include "engine/napi/promise_worker.h"
#include "engine/napi/session_wrap.h"
#include "engine/prompt.h"

namespace pc::napi {
namespace {

using Tokens = std::vector<TokenId>;

Napi::Value tokensResult(Napi::Env env, Tokens& tokens) { return tokensToJs(env, tokens); }

Napi::Object modelInfo(Napi::Env env, const Model& model) {
  Napi::Object info = Napi::Object::New(env);
  info.Set("path", model.file().path());
  info.Set("fileSize", static_cast<double>(model.file().fileSize()));
  info.Set("config", configToJs(env, model.config()));
  const Vocabulary& vocab = model.tokenizer().vocab();
  Napi::Object tokens = Napi::Object::New(env);
  auto setToken = [&](const char* key, TokenId id) {
    tokens.Set(key, id == kNoToken ? env.Null() : Napi::Number::New(env, id));
  };
  setToken("bos", vocab.bos);
  setToken("eos", vocab.eos);
  setToken("eot", vocab.eot);
  setToken("prefix", vocab.fim_pre);
  setToken("suffix", vocab.fim_suf);
  setToken("middle", vocab.fim_mid);
  tokens.Set("addBos", vocab.add_bos);
  tokens.Set("count", model.tokenizer().size());
  info.Set("tokens", tokens);
  info.Set("hasInfill", model.tokenizer().hasInfill());
  return info;
}

}  // namespace

Napi::Function ModelWrap::defineClass(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelWrap::tokenize>("tokenize"),
                         InstanceMethod<&ModelWrap::detokenize>("detokenize"),
                         InstanceMethod<&ModelWrap::tokenPieces>("tokenPieces"),
                         InstanceMethod<&ModelWrap::infillPrompt>("infillPrompt"),
                         InstanceMethod<&ModelWrap::chatPrompt>("chatPrompt"),
                         InstanceMethod<&ModelWrap::createSession>("createSession"),
                         InstanceMethod<&ModelWrap::dispose>("dispose"),
                     });
}

// Constructed only by load(), which passes the engine model as an External.
ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly; use loadModel(path)");
  model_ = *info[0].As<Napi::External<std::shared_ptr<const Model>>>().Data();
  info.This().As<Napi::Object>().Set("info", modelInfo(info.Env(), *model_));
}

Napi::Value ModelWrap::load(const Napi::CallbackInfo& info) {
  std::string path = requireString(info, 0, "model path");
  return PromiseWorker<std::shared_ptr<const Model>>::start(
      info.Env(), [path] { return Model::load(path); },
      [](Napi::Env env, std::shared_ptr<const Model>& model) -> Napi::Value {
        auto external = Napi::External<std::shared_ptr<const Model>>::New(env, &model);
        return addonData(env).model_class.New({external});
      });
}

std::shared_ptr<const Model> ModelWrap::model(Napi::Env env) const {
  if (!model_) throw Napi::Error::New(env, "the model has been disposed");
  return model_;
}

// tokenize(text, {addBos = model default, parseSpecial = false, leadingSpace = true}) -> Promise<Int32Array>
Napi::Value ModelWrap::tokenize(const Napi::CallbackInfo& info) {
  auto model = this->model(info.Env());
  std::string text = requireString(info, 0, "text");
  Napi::Object options = optionsArgument(info, 1);
  bool add_bos = boolOption(options, "addBos", model->tokenizer().vocab().add_bos);
  bool parse_special = boolOption(options, "parseSpecial", false);
  bool leading_space = boolOption(options, "leadingSpace", true);
  return PromiseWorker<Tokens>::start(
      info.Env(),
      [model, text = std::move(text), add_bos, parse_special, leading_space] {
        if (leading_space) return model->tokenizer().encode(text, add_bos, parse_special);
        Tokens tokens = model->tokenizer().encodeNoLeadingSpace(text);
        if (add_bos) tokens.insert(tokens.begin(), model->tokenizer().vocab().bos);
        return tokens;
      },
      tokensResult);
}

// detokenize(tokens) -> Promise<string>
Napi::Value ModelWrap::detokenize(const Napi::CallbackInfo& info) {
  auto model = this->model(info.Env());
  if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "tokens are required");
  Tokens tokens = tokensFromJs(info[0], "tokens");
  return PromiseWorker<std::string>::start(
      info.Env(), [model, tokens = std::move(tokens)] { return model->tokenizer().decode(tokens); },
      [](Napi::Env env, std::string& text) -> Napi::Value { return Napi::String::New(env, text); });
}

// tokenPieces(tokens) -> string[]: each token's text as the streaming decoder would emit it (for inspection).
Napi::Value ModelWrap::tokenPieces(const Napi::CallbackInfo& info) {
  auto model = this->model(info.Env());
  if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "tokens are required");
  Tokens tokens = tokensFromJs(info[0], "tokens");
  return PromiseWorker<std::vector<std::string>>::start(
      info.Env(),
      [model, tokens = std::move(tokens)] {
        StreamDecoder decoder(model->tokenizer());
        std::vector<std::string> pieces;
        pieces.reserve(tokens.size() + 1);
        for (TokenId token : tokens) pieces.push_back(decoder.push(token));
        if (!pieces.empty()) pieces.back() += decoder.flush();
        return pieces;
      },
      [](Napi::Env env, std::vector<std::string>& pieces) -> Napi::Value {
        Napi::Array array = Napi::Array::New(env, pieces.size());
        for (size_t i = 0; i < pieces.size(); ++i) array.Set(static_cast<uint32_t>(i), pieces[i]);
        return array;
      });
}

// infillPrompt(prefix, suffix, order: "spm" | "psm") -> Promise<Int32Array>
Napi::Value ModelWrap::infillPrompt(const Napi::CallbackInfo& info) {
  auto model = this->model(info.Env());
  std::string prefix = requireString(info, 0, "prefix");
  std::string suffix = requireString(info, 1, "suffix");
  std::string order_name = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "spm";
  if (order_name != "spm" && order_name != "psm")
    throw Napi::TypeError::New(info.Env(), "infill order must be \"spm\" or \"psm\", not \"" + order_name + "\"");
  InfillOrder order = order_name == "spm" ? InfillOrder::SuffixPrefixMiddle : InfillOrder::PrefixSuffixMiddle;
  return PromiseWorker<Tokens>::start(
      info.Env(),
      [model, prefix = std::move(prefix), suffix = std::move(suffix), order] {
        return buildInfillPrompt(model->tokenizer(), prefix, suffix, order);
      },
      tokensResult);
}

// chatPrompt(system, [{user, assistant?}]) -> Promise<Int32Array>
Napi::Value ModelWrap::chatPrompt(const Napi::CallbackInfo& info) {
  auto model = this->model(info.Env());
  std::string system = requireString(info, 0, "system prompt");
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(info.Env(), "turns must be an array");
  Napi::Array turns_js = info[1].As<Napi::Array>();
  std::vector<ChatTurn> turns;
  for (uint32_t i = 0; i < turns_js.Length(); ++i) {
    Napi::Value turn = turns_js.Get(i);
    if (!turn.IsObject() || !turn.As<Napi::Object>().Get("user").IsString())
      throw Napi::TypeError::New(info.Env(), "turns[" + std::to_string(i) + "].user must be a string");
    Napi::Value answer = turn.As<Napi::Object>().Get("assistant");
    turns.push_back({turn.As<Napi::Object>().Get("user").As<Napi::String>().Utf8Value(),
                     answer.IsString() ? answer.As<Napi::String>().Utf8Value() : std::string()});
  }
  return PromiseWorker<Tokens>::start(
      info.Env(),
      [model, system = std::move(system), turns = std::move(turns)] {
        return buildChatPrompt(model->tokenizer(), system, turns);
      },
      tokensResult);
}

// createSession({contextSize, threads}) -> Promise<Session>
Napi::Value ModelWrap::createSession(const Napi::CallbackInfo& info) { return SessionWrap::create(info, model(info.Env())); }

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  return info.Env().Undefined();
}

}  // namespace pc::napi
