#include "kernels/cpu/thread_pool.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/testing/check.h"

namespace {

using pc::cpu::ThreadPool;

constexpr int kThreadCounts[] = {1, 2, 3, 4};

PC_TEST(every_index_runs_exactly_once_per_run) {
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads);
    PC_CHECK_EQ(pool.size(), threads);
    // Plain (non-atomic) slots: each index owns one, and run() must publish the workers' writes to the caller.
    std::vector<int> runs_seen(static_cast<size_t>(threads), 0);
    int wrong_count = 0;
    constexpr int kRuns = 1000;
    for (int r = 0; r < kRuns; ++r) {
      pool.run([&](int index, int count) {
        if (count != threads) wrong_count = 1;  // benign race: every writer writes the same value
        ++runs_seen[static_cast<size_t>(index)];
      });
      for (int i = 0; i < threads; ++i) PC_CHECK_EQ(runs_seen[static_cast<size_t>(i)], r + 1);
    }
    PC_CHECK_EQ(wrong_count, 0);
  }
}

PC_TEST(parallel_for_covers_the_range_once) {
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 5, 17, 1000}) {
      std::vector<int> hits(static_cast<size_t>(n), 0);
      int empty_chunks = 0;
      pool.parallelFor(n, [&](int64_t begin, int64_t end) {
        if (begin >= end) empty_chunks = 1;
        for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
      });
      PC_CHECK_EQ(empty_chunks, 0);
      for (int64_t i = 0; i < n; ++i) PC_CHECK_EQ(hits[static_cast<size_t>(i)], 1);
    }
  }
}

PC_TEST(many_back_to_back_runs) {
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads);
    std::atomic<int64_t> total{0};
    constexpr int kRuns = 50000;
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < kRuns; ++r) pool.run([&](int index, int) { total.fetch_add(index + 1); });
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    PC_CHECK_EQ(total.load(), int64_t{kRuns} * threads * (threads + 1) / 2);
    std::printf("     %d threads: %.2f us per empty run\n", threads, us / kRuns);
  }
}

PC_TEST(runs_after_workers_went_to_sleep) {
  // Sleeping past the spin window sends the workers to the condition variable; the next run must wake them all.
  ThreadPool pool(3);
  for (int r = 0; r < 10; ++r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::atomic<int> mask{0};
    pool.run([&](int index, int) { mask.fetch_or(1 << index); });
    PC_CHECK_EQ(mask.load(), 7);
  }
}

PC_TEST(nested_run_executes_inline) {
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(static_cast<size_t>(threads) * 10);
    pool.run([&](int outer, int) {
      pool.parallelFor(10, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(outer * 10 + i)].fetch_add(1);
      });
    });
    for (auto& h : hits) PC_CHECK_EQ(h.load(), 1);
  }
}

PC_TEST(an_exception_is_rethrown_after_every_index_finished) {
  ThreadPool pool(3);
  std::atomic<int> finished{0};
  PC_CHECK_THROWS(pool.run([&](int index, int) {
    if (index == 0) throw std::runtime_error("task failed");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    finished.fetch_add(1);
  }),
                  "task failed");
  PC_CHECK_EQ(finished.load(), 2);
  // The pool is still usable.
  std::atomic<int> ran{0};
  pool.run([&](int, int) { ran.fetch_add(1); });
  PC_CHECK_EQ(ran.load(), 3);
}

PC_TEST(a_slow_index_does_not_stop_the_others) {
  // Index 1 blocks until every other index has run: whichever threads are awake must take the rest.
  for (int threads : {2, 3, 4}) {
    ThreadPool pool(threads);
    std::atomic<int> others{0};
    pool.run([&](int index, int count) {
      if (index == 1) {
        while (others.load() < count - 1) std::this_thread::yield();
      } else {
        others.fetch_add(1);
      }
    });
    PC_CHECK_EQ(others.load(), threads - 1);
  }
}

PC_TEST(construction_and_destruction) {
  PC_CHECK_THROWS(ThreadPool(0), "at least one thread");
  for (int i = 0; i < 50; ++i) {
    ThreadPool idle(1 + i % 4);  // destroyed without ever running
  }
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(1 + i % 4);
    std::atomic<int> ran{0};
    pool.run([&](int, int) { ran.fetch_add(1); });
    PC_CHECK_EQ(ran.load(), 1 + i % 4);
    if (i % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // workers asleep at destruction
  }
}

}  // namespace
