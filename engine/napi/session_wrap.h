// The JavaScript face of an engine session. One request at a time runs on the thread pool; generated tokens stream
// to a JS callback in order; cancel() stops the native loop within one token (or one prompt micro-batch); dispose()
// during a request cancels it and frees the session when the request has finished.
#pragma once

#include <napi.h>

#include <atomic>
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
  Napi::Value kvStats(const Napi::CallbackInfo& info);
  Napi::Value cancel(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<SessionState> state_;
};

}  // namespace pc::napi
