// The outer loop of every SIMD dot_rows: one weight row against `count` activation rows, taken in tiles of up to
// kMaxRows. Each tile size is its own instantiation, so a tile's accumulators are registers and each decoded weight
// block is reused across the tile's rows while it is still in a register (count == 1 is just the 1-row tile).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace pc::cpu {

// f(std::integral_constant<int, 0>{}), ..., f(std::integral_constant<int, kCount - 1>{}): an unrolled loop whose
// index is a compile-time constant, so that it can select accumulators and they stay in registers.
template <class F, int... kIndex>
inline void forEachIndex(F&& f, std::integer_sequence<int, kIndex...>) {
  (f(std::integral_constant<int, kIndex>{}), ...);
}
template <int kCount, class F>
inline void forEachIndex(F&& f) {
  forEachIndex(f, std::make_integer_sequence<int, kCount>{});
}

using TileFn = void (*)(int64_t n, const void* weight_row, const uint8_t* activations, size_t stride, float* out);

template <class Kernel, int... kRowsMinus1>
constexpr std::array<TileFn, sizeof...(kRowsMinus1)> tileTable(std::integer_sequence<int, kRowsMinus1...>) {
  return {&Kernel::template tile<kRowsMinus1 + 1>...};
}

// out (count,) = activations (count, n) @ weight_row (n,): Kernel::tile<kRows>(n, weight_row, activations, stride,
// out) computes out[0..kRows) for activation rows `stride` bytes apart.
template <class Kernel, int kMaxRows>
void dotRowsInTiles(int64_t n, const void* weight_row, const void* activations, size_t stride, int count,
                    float* out) {
  static constexpr auto tiles = tileTable<Kernel>(std::make_integer_sequence<int, kMaxRows>{});
  const uint8_t* rows = static_cast<const uint8_t*>(activations);
  for (int r = 0; r < count;) {
    const int tile = std::min(count - r, kMaxRows);
    tiles[tile - 1](n, weight_row, rows + r * stride, stride, out + r);
    r += tile;
  }
}

}  // namespace pc::cpu
