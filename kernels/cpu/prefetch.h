// Decode (one activation row) reads each weight byte once, from memory, one weight row after the next, and a core on
// its own keeps too few cache misses in flight to use the memory's bandwidth: the kernels ask for the weight bytes a
// fixed distance ahead of those they decode. Past a row's end that is the next row, which decode dots next (a
// matrix's rows are contiguous); a prefetch never faults. Measured on the TinyLlama shape, 2 threads: decode of
// Q4_K_M 17 -> 28 tokens/s, Q5_1 15 -> 22, F16 8 -> 11. Distances of 2 to 8 KB measured alike.
// Each line is asked for twice: into L2 from far ahead, then into L1 nearer. The far request starts the DRAM read
// early enough that the near one finds the line in L2. Decode on the TinyLlama shape, 2 threads, alternating runs of
// the two builds (`pyramid-coder bench --model M --pp 16 --tg 64 --depth 0 --engines pyramid-coder`): Q4_0
// 31 -> 34 tokens/s, Q4_K_M 25 -> 29, Q8_0 20 -> 23, Q5_1 18 -> 19, F16 9.3 -> 11.4.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pc::cpu {

constexpr size_t kPrefetchDistance = 2048;     // bytes, into L1: about one DRAM latency's worth at full bandwidth
constexpr size_t kFarPrefetchDistance = 8192;  // bytes, into L2

// Asks for the cache lines of [p + distance, p + distance + kBytes) with __builtin_prefetch's locality, one prefetch
// per 64 bytes from the first: when p is not line-aligned the last line is left to the next call, which streams on
// from there. The count is fixed so that the loop unrolls: GCC 12 -O3 deleted every prefetch of repacked_avx512.cc
// when each call ran two loops over a runtime line range (they came back with -fno-finite-loops or -fno-tree-dce).
template <size_t kBytes, size_t kDistance, int kLocality>
inline void prefetchLines(const void* p) {
  const auto* start = static_cast<const char*>(p) + kDistance;
  for (size_t offset = 0; offset < kBytes; offset += 64) __builtin_prefetch(start + offset, 0, kLocality);
}

// The lines of [p, p + kBytes) kFarPrefetchDistance ahead into L2 and kPrefetchDistance ahead into L1.
template <size_t kBytes>
inline void prefetchAhead(const void* p) {
  prefetchLines<kBytes, kFarPrefetchDistance, 2>(p);
  prefetchLines<kBytes, kPrefetchDistance, 3>(p);
}

}  // namespace pc::cpu
