#include "engine/napi/session_wrap.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/napi/addon_data.h"
#include "engine/napi/convert.h"
#include "engine/napi/promise_worker.h"

namespace pc::napi {
namespace {

struct StreamedToken {
  TokenId token = kNoToken;
  std::string text;
};

Napi::Object kvStatsToJs(Napi::Env env, const KvStats& stats) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("policy", stats.policy);
  result.Set("bytes", static_cast<double>(stats.bytes));
  result.Set("fullBytes", static_cast<double>(stats.full_bytes));
  result.Set("tokens", static_cast<double>(stats.tokens));
  result.Set("decayRatio", stats.decay_ratio);
  result.Set("recentRatio", stats.recent_ratio);
  Napi::Array layers = Napi::Array::New(env, stats.layers.size());
  for (size_t l = 0; l < stats.layers.size(); ++l) {
    Napi::Object layer = Napi::Object::New(env);
    layer.Set("tokens", static_cast<double>(stats.layers[l].tokens));
    layer.Set("bytes", static_cast<double>(stats.layers[l].bytes));
    layers.Set(static_cast<uint32_t>(l), layer);
  }
  result.Set("perLayer", layers);
  return result;
}

Napi::Object resultToJs(Napi::Env env, const GenerateResult& result, const KvStats& stats) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("tokens", tokensToJs(env, result.tokens));
  object.Set("text", result.text);
  object.Set("stopReason", stopReasonName(result.stop_reason));
  Napi::Object timings = Napi::Object::New(env);
  timings.Set("promptTokens", static_cast<double>(result.timings.prompt_tokens));
  timings.Set("reusedTokens", static_cast<double>(result.timings.reused_tokens));
  timings.Set("promptMs", result.timings.prompt_ms);
  timings.Set("genTokens", static_cast<double>(result.timings.generated_tokens));
  timings.Set("genMs", result.timings.generate_ms);
  object.Set("timings", timings);
  object.Set("kv", kvStatsToJs(env, stats));
  return object;
}

GenerateOptions generateOptions(const Napi::Object& options) {
  GenerateOptions parsed;
  parsed.max_tokens = static_cast<int64_t>(numberOption(options, "maxTokens", 256));
  SamplerOptions& s = parsed.sampling;
  s.temperature = static_cast<float>(numberOption(options, "temperature", s.temperature));
  s.top_k = static_cast<int32_t>(numberOption(options, "topK", s.top_k));
  s.top_p = static_cast<float>(numberOption(options, "topP", s.top_p));
  s.min_p = static_cast<float>(numberOption(options, "minP", s.min_p));
  s.repeat_penalty = static_cast<float>(numberOption(options, "repeatPenalty", s.repeat_penalty));
  s.repeat_last_n = static_cast<int32_t>(numberOption(options, "repeatLastN", s.repeat_last_n));
  s.seed = static_cast<uint64_t>(numberOption(options, "seed", 0));
  parsed.stop = stringsOption(options, "stop");
  parsed.ignore_eos = boolOption(options, "ignoreEos", false);
  return parsed;
}

// Releases the session's busy flag however a request ends.
struct BusyRelease {
  std::shared_ptr<SessionState> state;
  ~BusyRelease() {
    if (state) state->busy.store(false);
  }
};

void snapshotStats(SessionState& state) {
  KvStats stats = state.session->kvStats();
  std::lock_guard<std::mutex> lock(state.stats_mutex);
  state.stats = std::move(stats);
}

// Runs work(session, cancel) off the JS thread as the session's one request (the busy flag drops however it ends,
// the KV statistics are snapshotted after it) and resolves with its numbers as a typed array.
template <typename TypedArray, typename Work>
Napi::Value sessionRequest(Napi::Env env, std::shared_ptr<SessionState> state, Work work) {
  using Values = decltype(work(*state->session, &state->cancel));
  return PromiseWorker<Values>::start(
      env,
      [state, work = std::move(work)] {
        BusyRelease release{state};
        Values values = work(*state->session, &state->cancel);
        snapshotStats(*state);
        return values;
      },
      [](Napi::Env env, Values& values) -> Napi::Value {
        TypedArray array = TypedArray::New(env, values.size());
        std::copy(values.begin(), values.end(), array.Data());
        return array;
      });
}

// Generation with streamed tokens: progress items reach the JS callback in order, all before the promise settles.
class GenerateWorker : public Napi::AsyncProgressQueueWorker<StreamedToken> {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<SessionState> state, std::vector<TokenId> prompt, GenerateOptions options,
                 Napi::Function on_token)
      : Napi::AsyncProgressQueueWorker<StreamedToken>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        release_{state},
        state_(std::move(state)),
        prompt_(std::move(prompt)),
        options_(std::move(options)) {
    if (!on_token.IsEmpty()) on_token_ = Napi::Persistent(on_token);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    try {
      TokenCallback callback;
      if (!on_token_.IsEmpty()) {
        SessionState& state = *state_;
        callback = [&progress, &state](TokenId token, const std::string& text) {
          {
            std::unique_lock<std::mutex> lock(state.stream_mutex);
            state.stream_progress.wait(lock, [&state] {
              return state.tokens_delivered >= state.tokens_sent || state.cancel.load();
            });
            ++state.tokens_sent;
          }
          StreamedToken item{token, text};
          progress.Send(&item, 1);
        };
      }
      result_ = state_->session->generate(prompt_, options_, callback, &state_->cancel);
      snapshotStats(*state_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnProgress(const StreamedToken* items, size_t count) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; ++i) {
      Napi::Value token = items[i].token == kNoToken ? env.Null() : Napi::Number::New(env, items[i].token);
      try {
        on_token_.Call({token, Napi::String::New(env, items[i].text)});
      } catch (const Napi::Error&) {
        // An exception in the listener must not tear the request down half-way: stop generating instead.
        state_->cancel.store(true);
      }
      std::lock_guard<std::mutex> lock(state_->stream_mutex);
      ++state_->tokens_delivered;
      state_->stream_progress.notify_all();
    }
  }

  // The busy flag drops before the promise settles, so a request chained on it is never refused.
  void OnOK() override {
    state_->busy.store(false);
    KvStats stats;
    {
      std::lock_guard<std::mutex> lock(state_->stats_mutex);
      stats = state_->stats;
    }
    deferred_.Resolve(resultToJs(Env(), result_, stats));
  }

  void OnError(const Napi::Error& error) override {
    state_->busy.store(false);
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  BusyRelease release_;
  std::shared_ptr<SessionState> state_;
  std::vector<TokenId> prompt_;
  GenerateOptions options_;
  Napi::FunctionReference on_token_;
  GenerateResult result_;
};

}  // namespace

Napi::Function SessionWrap::defineClass(Napi::Env env) {
  return DefineClass(env, "Session",
                     {
                         InstanceMethod<&SessionWrap::generate>("generate"),
                         InstanceMethod<&SessionWrap::evaluate>("evaluate"),
                         InstanceMethod<&SessionWrap::logProbs>("logProbs"),
                         InstanceMethod<&SessionWrap::kvStats>("kvStats"),
                         InstanceMethod<&SessionWrap::cancel>("cancel"),
                         InstanceMethod<&SessionWrap::dispose>("dispose"),
                     });
}

Napi::Value SessionWrap::create(const Napi::CallbackInfo& info, std::shared_ptr<const Model> model) {
  Napi::Object options = optionsArgument(info, 0);
  SessionOptions parsed;
  parsed.context_size = static_cast<int64_t>(numberOption(options, "contextSize", 0));
  parsed.threads = static_cast<int>(numberOption(options, "threads", 0));
  parsed.kv = kvPolicyFromJs(options.Get("kv"));
  return PromiseWorker<std::shared_ptr<SessionState>>::start(
      info.Env(),
      [model = std::move(model), parsed] {
        auto state = std::make_shared<SessionState>();
        state->session = std::make_unique<Session>(model, parsed);
        state->stats = state->session->kvStats();
        return state;
      },
      [](Napi::Env env, std::shared_ptr<SessionState>& state) -> Napi::Value {
        auto external = Napi::External<std::shared_ptr<SessionState>>::New(env, &state);
        return addonData(env).session_class.New({external});
      });
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Session cannot be constructed directly; use model.createSession()");
  state_ = *info[0].As<Napi::External<std::shared_ptr<SessionState>>>().Data();
  info.This().As<Napi::Object>().Set("contextSize", static_cast<double>(state_->session->contextSize()));
}

std::shared_ptr<SessionState> SessionWrap::state(Napi::Env env) const {
  if (!state_) throw Napi::Error::New(env, "the session has been disposed");
  return state_;
}

std::shared_ptr<SessionState> SessionWrap::claim(Napi::Env env) const {
  auto state = this->state(env);
  if (state->busy.exchange(true)) throw Napi::Error::New(env, "the session is busy with another request");
  state->cancel.store(false);
  std::lock_guard<std::mutex> lock(state->stream_mutex);
  state->tokens_sent = state->tokens_delivered = 0;
  return state;
}

// generate(promptTokens, options, onToken?) -> Promise<{tokens, text, stopReason, timings, kv}>
Napi::Value SessionWrap::generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "prompt tokens are required");
  std::vector<TokenId> prompt = tokensFromJs(info[0], "prompt tokens");
  GenerateOptions options = generateOptions(optionsArgument(info, 1));
  Napi::Function on_token;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "onToken must be a function");
    on_token = info[2].As<Napi::Function>();
  }
  auto* worker = new GenerateWorker(env, claim(env), std::move(prompt), std::move(options), on_token);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// evaluate(tokens, {logits: "last" | "all"}) -> Promise<Float32Array>
Napi::Value SessionWrap::evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "tokens are required");
  std::vector<TokenId> tokens = tokensFromJs(info[0], "tokens");
  Napi::Object options = optionsArgument(info, 1);
  Napi::Value which = options.Get("logits");
  const std::string wanted_name = which.IsString() ? which.As<Napi::String>().Utf8Value() : "last";
  if (wanted_name != "last" && wanted_name != "all")
    throw Napi::TypeError::New(env, "option logits must be \"last\" or \"all\"");
  const LogitsWanted wanted = wanted_name == "all" ? LogitsWanted::All : LogitsWanted::Last;
  return sessionRequest<Napi::Float32Array>(env, claim(env), [tokens = std::move(tokens), wanted](Session& session, const std::atomic<bool>* cancel) {
    return session.evaluate(tokens, wanted, cancel);
  });
}

// logProbs(tokens, context) -> Promise<Float64Array>: log p(tokens[t] | tokens[0, t)) for t in [context, n), the
// first `context` tokens prefilled as one prompt and the rest fed as generation would, under the session's policy.
Napi::Value SessionWrap::logProbs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "logProbs(tokens, context) needs a context length");
  std::vector<TokenId> tokens = tokensFromJs(info[0], "tokens");
  const auto context = static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue());
  return sessionRequest<Napi::Float64Array>(env, claim(env), [tokens = std::move(tokens), context](Session& session, const std::atomic<bool>* cancel) {
    return session.logProbs(tokens, context, cancel);
  });
}

// kvStats() -> the cache after the last finished request (never blocks on a running one)
Napi::Value SessionWrap::kvStats(const Napi::CallbackInfo& info) {
  auto state = this->state(info.Env());
  std::lock_guard<std::mutex> lock(state->stats_mutex);
  return kvStatsToJs(info.Env(), state->stats);
}

Napi::Value SessionWrap::cancel(const Napi::CallbackInfo& info) {
  if (state_) state_->requestCancel();
  return info.Env().Undefined();
}

Napi::Value SessionWrap::dispose(const Napi::CallbackInfo& info) {
  if (state_) state_->requestCancel();
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace pc::napi
