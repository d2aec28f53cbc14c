// The JavaScript face of an engine session. One request at a time runs on the thread pool; generated tokens stream
// to a JS callback in order; cancel() stops the native loop within one token (or one prompt micro-batch); dispose()
// during a request cancels it and frees the session when the request has finished.
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "engine/session.h"

namespace pc::napi {

// Shared by the wrapper and the workers running on its behalf.
struct SessionState {
  std::unique_ptr<Session> session;
  std::atomic<bool> cancel{false};
  std::atomic<bool> busy{false};
  std::mutex stats_mutex;
  KvStats stats;  // snapshot after the last request, readable while another runs

  // Flow control of streamed tokens: the native loop sends token n only once the JS listener has handled token n-1,
  // so it computes at most one token ahead of the listener. An abort issued while handling token n therefore stops
  // generation at token n+1 however busy the JS thread is, and a slow listener never piles up a queue.
  std::mutex stream_mutex;
  std::condition_variable stream_progress;
  uint64_t tokens_sent = 0;
  uint64_t tokens_delivered = 0;

  void requestCancel() {
    cancel.store(true);
    std::lock_guard<std::mutex> lock(stream_mutex);
    stream_progress.notify_all();
  }
};

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function defineClass(Napi::Env env);
  // model.createSession(options) -> Promise<Session>
  static Napi::Value create(const Napi::CallbackInfo& info, std::shared_ptr<const Model> model);

  explicit SessionWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<SessionState> state(Napi::Env env) const;  // throws once disposed
  std::shared_ptr<SessionState> claim(Napi::Env env) const;  // marks busy; throws if a request is running

  Napi::Value generate(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);
  Napi::Value logProbs(const Napi::CallbackInfo& info);
  Napi::Value kvStats(const Napi::CallbackInfo& info);
  Napi::Value cancel(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<SessionState> state_;
};

}  // namespace pc::napi
