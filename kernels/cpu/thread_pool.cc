#include "kernels/cpu/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pc::cpu {
namespace {

// A worker keeps polling this long after its last job before it sleeps on the condition variable: decode's regions
// follow each other within microseconds, and a futex wake costs tens of them. The first part of the window spins
// with `pause`; the rest yields, so a worker does not starve other processes on a busy machine.
constexpr auto kPauseWindow = std::chrono::microseconds(50);
constexpr auto kSpinWindow = std::chrono::microseconds(200);
constexpr int kPollsPerClockRead = 16;

// A job's slots are claimed from one atomic word: the job's generation above, the next unclaimed slot below.
constexpr int kSlotBits = 16;
constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() holds, pausing at first, then yielding; true if it held within `window`. With an unbounded
// window it only returns once done() holds.
template <typename Done>
bool spinUntil(Done done, std::chrono::steady_clock::duration window) {
  const auto start = std::chrono::steady_clock::now();
  bool pausing = true;
  for (;;) {
    for (int i = 0; i < kPollsPerClockRead; ++i) {
      if (done()) return true;
      if (pausing) {
        cpuRelax();
      } else {
        std::this_thread::yield();
      }
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    pausing = elapsed < kPauseWindow;
    if (elapsed >= window) return false;
  }
}

// Set while a thread runs a task, so that a run() from inside a task executes inline instead of deadlocking.
thread_local bool t_in_task = false;

struct InTask {
  const bool saved = t_in_task;
  InTask() { t_in_task = true; }
  ~InTask() { t_in_task = saved; }
};

}  // namespace

// A job has one slot per thread index. Whoever is awake claims the next slot, the caller included, so a worker that
// the OS has not scheduled yet delays nothing: its slot is run by a thread that is running. run() returns once every
// slot has finished, whichever threads ran them.
struct ThreadPool::State {
  int size = 1;
  std::vector<std::thread> workers;

  // The published job: written by the caller before `claim` moves to a new generation, read by the claimers of its
  // slots after they see that generation.
  void* context = nullptr;
  void (*call)(void*, int, int) = nullptr;
  std::exception_ptr error;  // the first exception a slot threw, under error_mutex
  std::mutex error_mutex;
  std::atomic<bool> stop{false};

  // Each counter on its own cache line: all threads poll `claim` while they bump `finished`.
  alignas(64) std::atomic<uint64_t> claim{0};  // generation << kSlotBits | next unclaimed slot
  alignas(64) std::atomic<int> finished{0};    // slots of the current job that have run
  alignas(64) std::atomic<int> sleepers{0};    // workers blocked (or about to block) on `wake`
  std::mutex mutex;
  std::condition_variable wake;

  static uint64_t generationOf(uint64_t word) { return word >> kSlotBits; }

  // Claims and runs slots of generation `generation` until none is left.
  void runSlots(uint64_t generation) {
    uint64_t word = claim.load(std::memory_order_acquire);
    while (generationOf(word) == generation && static_cast<int>(word & kSlotMask) < size) {
      if (!claim.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      try {
        InTask in_task;
        call(context, static_cast<int>(word & kSlotMask), size);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      finished.fetch_add(1, std::memory_order_acq_rel);
      word = claim.load(std::memory_order_acquire);
    }
  }

  void workerLoop() {
    uint64_t seen = 0;
    for (;;) {
      const auto published = [&] { return generationOf(claim.load(std::memory_order_acquire)) != seen; };
      if (!spinUntil(published, kSpinWindow)) {
        std::unique_lock<std::mutex> lock(mutex);
        // Dekker-style handshake with run(): either run() sees sleepers > 0 and notifies under the mutex, or this
        // thread sees the new generation in the predicate (both are sequentially consistent).
        sleepers.fetch_add(1);
        wake.wait(lock, [&] { return generationOf(claim.load()) != seen; });
        sleepers.fetch_sub(1);
      }
      seen = generationOf(claim.load(std::memory_order_acquire));
      if (stop.load(std::memory_order_acquire)) return;
      runSlots(seen);
    }
  }
};

ThreadPool::ThreadPool(int threads) : state_(new State) {
  if (threads < 1 || static_cast<uint64_t>(threads) > kSlotMask) {
    delete state_;
    throw std::invalid_argument("ThreadPool needs at least one thread (and at most 65535), got " +
                                std::to_string(threads));
  }
  state_->size = threads;
  state_->workers.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) state_->workers.emplace_back([this] { state_->workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop.store(true, std::memory_order_release);
    state_->claim.fetch_add(uint64_t{1} << kSlotBits);
  }
  state_->wake.notify_all();
  for (std::thread& worker : state_->workers) worker.join();
  delete state_;
}

int ThreadPool::size() const { return state_->size; }

void ThreadPool::runErased(void* context, void (*call)(void*, int, int)) {
  State& s = *state_;
  // One thread, or a run() nested inside a task: every slot runs here, in order.
  if (s.size == 1 || t_in_task) {
    InTask in_task;
    for (int i = 0; i < s.size; ++i) call(context, i, s.size);
    return;
  }
  s.context = context;
  s.call = call;
  s.finished.store(0, std::memory_order_relaxed);
  // A new generation with all slots unclaimed; sequentially consistent, it publishes the job (see workerLoop).
  const uint64_t generation = State::generationOf(s.claim.load(std::memory_order_relaxed)) + 1;
  s.claim.store(generation << kSlotBits);
  if (s.sleepers.load() > 0) {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.wake.notify_all();
  }
  s.runSlots(generation);
  spinUntil([&] { return s.finished.load(std::memory_order_acquire) == s.size; },
            std::chrono::steady_clock::duration::max());
  if (s.error) std::rethrow_exception(std::exchange(s.error, nullptr));
}

}  // namespace pc::cpu
