// Q4_0 and Q8_0 weight matrices repacked at load into groups of 8 rows, so that one activation block serves 8 weight
// rows and one load + convert covers the 8 rows' scales. In GGUF layout a kernel handles one weight row at a time and
// must gather each block's scale from a different row (and each activation block's scale once per weight row); the
// gathers dominated the 32-block kernels. The idea is llama.cpp's "repack" (block_q4_0x8); the layout here is our own,
// shaped for AVX-512 VNNI.
//
// Layout of one group (rows 8g .. 8g+7, nb = cols / 32 block indices), group_bytes apart, 64-byte aligned:
//   scales  nb x 8 f16: block index b's scales of rows 0..7, 16 bytes per b; section padded to a multiple of 64 bytes
//   quants  nb x quantBytes(type), each block index 64-byte aligned. A block index's 32 columns are four chunks of 8,
//           chunk k = columns 8k .. 8k+7, each chunk 64 bytes as [row][8 columns]: one 64-bit broadcast of an
//           activation's 8 bytes lines up with all 8 rows (int32 lane 2r + h = row r, columns 8k+4h .. 8k+4h+3).
//     Q8_0  256 bytes: chunk k at byte 64k, signed bytes as in GGUF.
//     Q4_0  128 bytes: chunks 2m and 2m+1 share the 64 bytes at 64m, chunk 2m in the low nibbles, 2m+1 in the high.
//           A nibble holds q - 8 in 4-bit two's complement (GGUF's q xor 8), so a nibble masked into a byte's high
//           half is 16 (q - 8) as a signed byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "engine/ggml_type.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/prefetch.h"

namespace pc::cpu {

constexpr int kRepackRows = 8;  // weight rows per group

struct RepackedWeights {
  GgmlType type = GgmlType::Q4_0;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t group_bytes = 0;  // a multiple of 64

  const uint8_t* group(int64_t g) const { return storage.data()->bytes + static_cast<size_t>(g) * group_bytes; }
  uint8_t* group(int64_t g) { return storage.data()->bytes + static_cast<size_t>(g) * group_bytes; }

  struct alignas(64) CacheLine {
    uint8_t bytes[64];
  };
  std::vector<CacheLine> storage;  // rows / 8 groups
};

// Whether repackWeights takes this matrix: Q4_0 or Q8_0, rows % 8 == 0, cols % 32 == 0.
bool canRepack(GgmlType type, int64_t rows, int64_t cols);

// The GGUF matrix `w` in groups of 8 rows. Throws std::invalid_argument unless canRepack(w.type, w.rows, w.cols).
RepackedWeights repackWeights(const MatrixView& w);

// out[t * out_stride + i] = dot(weight row 8g + i, activation row t) for i < 8, t < count, where `group` is
// RepackedWeights::group(g) and n its cols. Activations are the prepared Q8_0 rows of the block32 kernels
// (weightKernels(type, isa)->prepare_activation), `stride` bytes apart. Each group's blocks are
// decoded once per tile of activation rows (8 on AVX-512, 4 on AVX2).
using RepackedDotFn = void (*)(int64_t n, const uint8_t* group, const void* activations, size_t stride, int count,
                               float* out, size_t out_stride);

// The kernel for `type` at `isa` (falling back to the best lower ISA that has one); nullptr for types canRepack
// refuses.
RepackedDotFn repackedDot(GgmlType type, Isa isa);

// A matrix's repacked copy, made by the first product that needs it, so loading a model stays a mapping and reads
// no weight; every later product reuses it. Shared by all views of the matrix, safe to call from several sessions.
// With `release_mapped_source`, the original rows' pages are handed back to the kernel once copied: they belong to a
// read-only file mapping, so this only drops cached pages, and the model does not pay for the weights twice.
class RepackOnFirstUse {
 public:
  explicit RepackOnFirstUse(bool release_mapped_source) : release_mapped_source_(release_mapped_source) {}
  const RepackedWeights& get(const MatrixView& w);

 private:
  std::once_flag once_;
  RepackedWeights weights_;
  bool release_mapped_source_;
};

// Internal to the repacked kernel files: layout sizes, prefetching, and the per-ISA kernels (nullptr where the file
// was built without that ISA, or for other types).
namespace repacked {
constexpr size_t quantBytes(GgmlType type) { return type == GgmlType::Q4_0 ? 128 : 256; }
constexpr size_t scaleSectionBytes(int64_t blocks) { return (static_cast<size_t>(blocks) * 16 + 63) / 64 * 64; }

// Called as block index b of a group is dotted: asks for the quants ahead as prefetch.h does, and for the scales of
// the block index kPrefetchDistance bytes of quants ahead. Past the group's end that is the next group, which the
// same thread usually takes next.
template <GgmlType kType>
inline void prefetchGroupAhead(const uint8_t* group, const uint8_t* quants, int64_t b) {
  constexpr auto kAhead = static_cast<int64_t>(kPrefetchDistance / quantBytes(kType));
  prefetchAhead<quantBytes(kType)>(quants + b * quantBytes(kType));
  __builtin_prefetch(group + 16 * (b + kAhead), 0, 3);
}

RepackedDotFn avx2Dot(GgmlType type);
RepackedDotFn avx512Dot(GgmlType type);
}  // namespace repacked

}  // namespace pc::cpu
