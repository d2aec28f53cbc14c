// Single-threaded throughput of each weight type's dot_rows on each ISA this machine has, on one weight matrix
// (default: TinyLlama's ffn, 5632 x 2048): count = 1 is decode (one token; memory-bound, so GB/s of weight bytes
// streamed is the figure to compare with the machine's bandwidth), count = 8 a prompt-processing tile (compute-bound:
// GFLOP/s). Activation preparation is excluded: it is done once per matrix product, not per weight row.
//
//   kernel_bench [--type Q4_0] [--isa avx512] [--rows 5632] [--cols 2048] [--json]
//   kernel_bench --bandwidth [--threads 2] [--json]
//
// --bandwidth measures what decode is bound by instead: the machine's read bandwidth, `threads` threads each summing
// its share of a 1 GiB buffer (GB/s, median of 5 passes; JSON: threads, gbps).
//
// --json prints one object per line: type, isa, rows, cols, count, reps, ms (median pass, wall clock), ms_best,
// cpu_ms (median pass, this thread's CPU time: on a shared machine it leaves out the time the thread waited for a
// core), weight_gbps and gflops (from ms), weight_gbps_cpu (from cpu_ms).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include "engine/ggml_type.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/random_weights.h"
#include "kernels/cpu/weight_kernels.h"

namespace {

using pc::GgmlType;
using pc::cpu::Isa;

constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                               GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                               GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
constexpr int kCounts[] = {1, 8};
constexpr double kMinSeconds = 0.5;  // per measurement: enough passes for a stable median on a shared machine
constexpr int kMinPasses = 5;

struct Options {
  std::string type;  // empty: all
  std::string isa;   // empty: all available
  int64_t rows = 5632;
  int64_t cols = 2048;
  bool json = false;
  bool bandwidth = false;
  int threads = 2;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--json") {
      options.json = true;
    } else if (arg == "--type" && has_value) {
      options.type = argv[++i];
    } else if (arg == "--isa" && has_value) {
      options.isa = argv[++i];
    } else if (arg == "--rows" && has_value) {
      options.rows = std::atoll(argv[++i]);
    } else if (arg == "--cols" && has_value) {
      options.cols = std::atoll(argv[++i]);
    } else if (arg == "--bandwidth") {
      options.bandwidth = true;
    } else if (arg == "--threads" && has_value && std::atoi(argv[i + 1]) > 0) {
      options.threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: kernel_bench [--type Q4_0] [--isa scalar|avx2|avx512] [--rows N] [--cols N] [--json]\n"
                   "       kernel_bench --bandwidth [--threads N] [--json]\n");
      std::exit(2);
    }
  }
  return options;
}

struct Measurement {
  int passes = 0;
  double median_s = 0.0;
  double best_s = 0.0;
  double median_cpu_s = 0.0;
};

double threadCpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

// Passes over the whole matrix: out[row * count + r] = dot(weight row, activation row r).
Measurement measure(const pc::cpu::WeightKernels& kernels, const Options& options, const std::vector<uint8_t>& weights,
                    size_t row_bytes, const std::vector<uint8_t>& activations, size_t stride, int count) {
  std::vector<float> out(static_cast<size_t>(options.rows * count));
  const auto pass = [&] {
    for (int64_t row = 0; row < options.rows; ++row) {
      kernels.dot_rows(options.cols, &weights[row * row_bytes], activations.data(), stride, count, &out[row * count]);
    }
  };
  pass();  // warm the caches and the tables' lazy initialization
  std::vector<double> seconds, cpu_seconds;
  double total = 0.0;
  while (total < kMinSeconds || static_cast<int>(seconds.size()) < kMinPasses) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = threadCpuSeconds();
    pass();
    cpu_seconds.push_back(threadCpuSeconds() - cpu_start);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    total += seconds.back();
  }
  std::sort(seconds.begin(), seconds.end());
  std::sort(cpu_seconds.begin(), cpu_seconds.end());
  return {static_cast<int>(seconds.size()), seconds[seconds.size() / 2], seconds.front(),
          cpu_seconds[cpu_seconds.size() / 2]};
}

// Sums words[0, n), n a multiple of 32, a 256-byte step at a time into independent vector sums. Wide loads matter:
// the fewer instructions per cache line, the more lines a core keeps in flight (with 8-byte loads a thread reads about
// a third less than the kernels do), so the AVX-512 version, when the machine has it, is the one that measures.
typedef uint64_t Lanes16 __attribute__((vector_size(16)));
typedef uint64_t Lanes64 __attribute__((vector_size(64)));

template <class Lanes>
inline __attribute__((always_inline)) uint64_t sumWords(const uint64_t* words, size_t n) {
  constexpr int kLanes = sizeof(Lanes) / 8, kSums = 256 / sizeof(Lanes);
  Lanes sums[kSums] = {};
  for (size_t i = 0; i < n; i += 32) {
    for (int v = 0; v < kSums; ++v) {
      Lanes lanes;
      std::memcpy(&lanes, words + i + static_cast<size_t>(v * kLanes), sizeof lanes);
      sums[v] += lanes;
    }
  }
  uint64_t total = 0;
  for (const Lanes& part : sums) {
    for (int lane = 0; lane < kLanes; ++lane) total += part[lane];
  }
  return total;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) uint64_t sumWordsAvx512(const uint64_t* words, size_t n) {
  return sumWords<Lanes64>(words, n);
}
#endif

// Read bandwidth in GB/s: `threads` threads each sum their contiguous share of a buffer much larger than any cache.
double readBandwidth(int threads) {
  constexpr size_t kBytes = size_t{1} << 30;
  std::vector<uint64_t> buffer(kBytes / sizeof(uint64_t), 1);  // written once, so every page is mapped
  const auto sum = [](const uint64_t* words, size_t n) {
#if defined(__x86_64__)
    if (pc::cpu::detectIsa() >= Isa::Avx512) return sumWordsAvx512(words, n);
#endif
    return sumWords<Lanes16>(words, n);
  };
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  std::vector<double> seconds;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t steps = buffer.size() / 32;
        const size_t begin = steps * t / threads * 32, end = steps * (t + 1) / threads * 32;
        sums[static_cast<size_t>(t)] = sum(buffer.data() + begin, end - begin);
      });
    }
    for (std::thread& worker : workers) worker.join();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  uint64_t total = 0;
  for (uint64_t part : sums) total += part;
  if (total != buffer.size()) std::fprintf(stderr, "kernel_bench: read check failed\n");
  std::sort(seconds.begin(), seconds.end());
  return static_cast<double>(kBytes) / seconds[seconds.size() / 2] / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  if (options.bandwidth) {
    const double gbps = readBandwidth(options.threads);
    if (options.json) {
      std::printf("{\"threads\":%d,\"gbps\":%.3f}\n", options.threads, gbps);
    } else {
      std::printf("read bandwidth, %d thread%s: %.2f GB/s\n", options.threads, options.threads == 1 ? "" : "s", gbps);
    }
    return 0;
  }
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (isa <= pc::cpu::detectIsa() && (options.isa.empty() || options.isa == pc::cpu::isaName(isa))) {
      isas.push_back(isa);
    }
  }
  if (!options.json) {
    std::printf("%-5s %-6s %5s %9s %9s %8s %9s %9s  (%lld x %lld, one thread, median of >= %d passes)\n", "type",
                "isa", "count", "ms", "GB/s", "GFLOP/s", "cpu ms", "cpu GB/s", static_cast<long long>(options.rows),
                static_cast<long long>(options.cols), kMinPasses);
  }
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(options.cols * kCounts[1]));
  for (float& v : x) v = normal(rng);

  for (GgmlType type : kTypes) {
    const std::string name = pc::ggmlTypeName(static_cast<uint32_t>(type));
    if (!options.type.empty() && options.type != name) continue;
    const std::vector<uint8_t> weights = pc::cpu::randomWeightRows(type, options.rows, options.cols, 42);
    const size_t row_bytes = pc::cpu::weightRowBytes(type, options.cols);
    for (Isa isa : isas) {
      const pc::cpu::WeightKernels* kernels = pc::cpu::weightKernels(type, isa);
      if (!kernels || options.cols % kernels->block_size != 0) {
        std::fprintf(stderr, "%s %s: no kernels for this shape\n", name.c_str(), pc::cpu::isaName(isa));
        continue;
      }
      const size_t stride = pc::cpu::activationRowBytes(kernels->activation_type, options.cols);
      std::vector<uint8_t> activations(stride * kCounts[1]);
      for (int r = 0; r < kCounts[1]; ++r) {
        kernels->prepare_activation(&x[r * options.cols], &activations[r * stride], options.cols);
      }
      for (int count : kCounts) {
        const Measurement m = measure(*kernels, options, weights, row_bytes, activations, stride, count);
        const double gbps = static_cast<double>(weights.size()) / m.median_s / 1e9;
        const double gflops = 2.0 * static_cast<double>(options.rows * options.cols) * count / m.median_s / 1e9;
        const double cpu_gbps = static_cast<double>(weights.size()) / m.median_cpu_s / 1e9;
        if (options.json) {
          std::printf(
              "{\"type\":\"%s\",\"isa\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"count\":%d,\"reps\":%d,\"ms\":%.4f,"
              "\"ms_best\":%.4f,\"cpu_ms\":%.4f,\"weight_gbps\":%.3f,\"gflops\":%.3f,\"weight_gbps_cpu\":%.3f}\n",
              name.c_str(), pc::cpu::isaName(isa), static_cast<long long>(options.rows),
              static_cast<long long>(options.cols), count, m.passes, m.median_s * 1e3, m.best_s * 1e3,
              m.median_cpu_s * 1e3, gbps, gflops, cpu_gbps);
        } else {
          std::printf("%-5s %-6s %5d %9.3f %9.2f %8.2f %9.3f %9.2f\n", name.c_str(), pc::cpu::isaName(isa), count,
                      m.median_s * 1e3, gbps, gflops, m.median_cpu_s * 1e3, cpu_gbps);
        }
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
