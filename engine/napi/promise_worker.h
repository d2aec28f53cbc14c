// Runs engine work on libuv's thread pool and settles a JavaScript promise with its result: the one mechanism by
// which every addon call stays off the JS thread. Engine exceptions become promise rejections with their message.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <utility>

namespace pc::napi {

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;                            // worker thread
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;     // JS thread

  static Napi::Promise start(Napi::Env env, Work work, ToJs to_js) {
    auto* worker = new PromiseWorker(env, std::move(work), std::move(to_js));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();  // libuv owns the worker from here and deletes it after OnOK/OnError
    return promise;
  }

 private:
  PromiseWorker(Napi::Env env, Work work, ToJs to_js)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        to_js_(std::move(to_js)) {}

  void Execute() override {
    try {
      result_ = work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown engine error");
    }
  }

  void OnOK() override {
    try {
      deferred_.Resolve(to_js_(Env(), result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs to_js_;
  Result result_{};
};

}  // namespace pc::napi
