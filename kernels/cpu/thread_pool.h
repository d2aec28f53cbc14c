// A fixed set of worker threads for the forward pass. The caller takes part in every job. Decode runs a few hundred
// parallel regions per token, so between regions workers spin briefly before sleeping: a condition-variable wake
// per region would cost more than the work of a small matrix.
#pragma once

#include <cstdint>

namespace pc::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads in total, the caller included (>= 1)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;

  // Runs task(index, count) once for every index in [0, count), count = size(), and returns when all have finished.
  // Each index normally runs on its own thread, but an index whose worker is slow to wake (descheduled on a busy
  // machine) is run by a thread that is awake, so an index is a share of the work, not a thread identity. If tasks
  // throw, the first exception is rethrown once every index has finished. A run() from inside a task runs all of
  // its indices inline on that thread.
  template <typename Task>
  void run(Task&& task) {
    runErased(&task, [](void* context, int index, int count) { (*static_cast<Task*>(context))(index, count); });
  }

  // Splits [0, n) into contiguous chunks, one per index, and runs body(begin, end) on each non-empty chunk.
  template <typename Body>
  void parallelFor(int64_t n, Body&& body) {
    run([&](int index, int count) {
      const int64_t begin = n * index / count, end = n * (index + 1) / count;
      if (begin < end) body(begin, end);
    });
  }

 private:
  void runErased(void* context, void (*call)(void*, int, int));
  struct State;
  State* state_;
};

}  // namespace pc::cpu
