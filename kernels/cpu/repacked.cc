// Repacking of Q4_0 / Q8_0 matrices into groups of 8 rows, the scalar reference dot over that layout (the definition
// the SIMD kernels are tested against: it sums exactly as block32's scalar dot_rows does, so it matches it bit for
// bit), and the per-ISA lookup.
#include "kernels/cpu/repacked.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_blocks.h"

namespace pc::cpu {
namespace {

using repacked::quantBytes;
using repacked::scaleSectionBytes;

// Per type: `pack` writes row r's part of a block index's quants (repacked.h) from its GGUF block; `get` reads
// weight (row r, column c) back as q - 8 (Q4_0) or q (Q8_0).
template <GgmlType kType>
struct Format;

template <>
struct Format<GgmlType::Q4_0> {
  using Block = BlockQ4_0;
  // GGUF byte j holds columns j (low nibble) and j + 16 (high); chunks 0 and 1 take the low nibbles of bytes 0..7
  // and 8..15, chunks 2 and 3 their high nibbles (8 bytes at a time, as 64-bit words). xor 0x88 turns each q into
  // q - 8 in two's complement.
  static void pack(const Block& block, int r, uint8_t* quants) {
    constexpr uint64_t kLow = 0x0F0F0F0F0F0F0F0Full, kFlip = 0x8888888888888888ull;
    uint64_t first, second;
    std::memcpy(&first, block.qs, 8);
    std::memcpy(&second, block.qs + 8, 8);
    const uint64_t chunks01 = ((first & kLow) | ((second & kLow) << 4)) ^ kFlip;
    const uint64_t chunks23 = (((first >> 4) & kLow) | (second & ~kLow)) ^ kFlip;
    std::memcpy(quants + 8 * r, &chunks01, 8);
    std::memcpy(quants + 64 + 8 * r, &chunks23, 8);
  }
  static int get(const uint8_t* quants, int r, int c) {
    const int nibble = (quants[64 * (c / 16) + 8 * r + c % 8] >> (c / 8 % 2 * 4)) & 0x0F;
    return (nibble ^ 8) - 8;
  }
};

template <>
struct Format<GgmlType::Q8_0> {
  using Block = BlockQ8_0;
  static void pack(const Block& block, int r, uint8_t* quants) {
    for (int k = 0; k < 4; ++k) std::memcpy(quants + 64 * k + 8 * r, block.qs + 8 * k, 8);
  }
  static int get(const uint8_t* quants, int r, int c) { return static_cast<int8_t>(quants[64 * (c / 8) + 8 * r + c % 8]); }
};

template <GgmlType kType>
void repackGroups(const MatrixView& w, RepackedWeights& out) {
  using F = Format<kType>;
  const int64_t blocks = w.cols / kBlock32;
  for (int64_t g = 0; g < w.rows / kRepackRows; ++g) {
    uint8_t* group = out.group(g);
    uint8_t* quants = group + scaleSectionBytes(blocks);
    for (int r = 0; r < kRepackRows; ++r) {
      const auto* row = reinterpret_cast<const typename F::Block*>(static_cast<const uint8_t*>(w.data) +
                                                                   (g * kRepackRows + r) * w.row_bytes);
      for (int64_t b = 0; b < blocks; ++b) {
        std::memcpy(group + 16 * b + 2 * r, &row[b].d, sizeof(f16_t));
        F::pack(row[b], r, quants + b * quantBytes(kType));
      }
    }
  }
}

template <GgmlType kType>
void dotScalar(int64_t n, const uint8_t* group, const void* activations, size_t stride, int count, float* out,
               size_t out_stride) {
  using F = Format<kType>;
  const int64_t blocks = n / kBlock32;
  const uint8_t* quants = group + scaleSectionBytes(blocks);
  for (int t = 0; t < count; ++t) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(activations) + t * stride);
    for (int r = 0; r < kRepackRows; ++r) {
      float sum = 0.0f;
      for (int64_t b = 0; b < blocks; ++b) {
        int32_t dot = 0;
        for (int c = 0; c < kBlock32; ++c) dot += F::get(quants + b * quantBytes(kType), r, c) * a[b].qs[c];
        f16_t d;
        std::memcpy(&d, group + 16 * b + 2 * r, sizeof d);
        sum += f16ToF32(d) * f16ToF32(a[b].d) * static_cast<float>(dot);
      }
      out[t * out_stride + r] = sum;
    }
  }
}

bool repackableType(GgmlType type) { return type == GgmlType::Q4_0 || type == GgmlType::Q8_0; }

}  // namespace

bool canRepack(GgmlType type, int64_t rows, int64_t cols) {
  return repackableType(type) && rows > 0 && rows % kRepackRows == 0 && cols > 0 && cols % kBlock32 == 0;
}

RepackedWeights repackWeights(const MatrixView& w) {
  if (!canRepack(w.type, w.rows, w.cols)) {
    throw std::invalid_argument(std::string("cannot repack a ") + ggmlTypeName(static_cast<uint32_t>(w.type)) +
                                " matrix of " + std::to_string(w.rows) + " x " + std::to_string(w.cols));
  }
  RepackedWeights out;
  out.type = w.type;
  out.rows = w.rows;
  out.cols = w.cols;
  const int64_t blocks = w.cols / kBlock32;
  out.group_bytes = scaleSectionBytes(blocks) + static_cast<size_t>(blocks) * quantBytes(w.type);
  // Value-initialized, so that the scale sections' padding is zero.
  out.storage.resize(static_cast<size_t>(w.rows / kRepackRows) * out.group_bytes / sizeof(RepackedWeights::CacheLine));
  if (w.type == GgmlType::Q4_0) {
    repackGroups<GgmlType::Q4_0>(w, out);
  } else {
    repackGroups<GgmlType::Q8_0>(w, out);
  }
  return out;
}

RepackedDotFn repackedDot(GgmlType type, Isa isa) {
  if (!repackableType(type)) return nullptr;
  RepackedDotFn fn = nullptr;
  if (isa >= Isa::Avx512) fn = repacked::avx512Dot(type);
  if (!fn && isa >= Isa::Avx2) fn = repacked::avx2Dot(type);
  if (fn) return fn;
  return type == GgmlType::Q4_0 ? dotScalar<GgmlType::Q4_0> : dotScalar<GgmlType::Q8_0>;
}

const RepackedWeights& RepackOnFirstUse::get(const MatrixView& w) {
  std::call_once(once_, [&] {
    weights_ = repackWeights(w);
    if (!release_mapped_source_) return;
    // Only whole pages inside the matrix: its neighbours' pages stay.
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<uintptr_t>(w.data);
    const uintptr_t end = begin + static_cast<uintptr_t>(w.rows) * w.row_bytes;
    const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
    if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  });
  return weights_;
}

}  // namespace pc::cpu
