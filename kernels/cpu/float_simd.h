// SIMD kernels for float weights, written once and compiled twice: float_kernels_avx2.cc and float_kernels_avx512.cc
// each include this with their own `V` (vector width and the loads/conversions of that ISA). Everything here sits
// in an unnamed namespace on purpose: each including file compiles it for its own ISA, and the linker must never
// merge the two copies (an AVX-512 copy would fault on an AVX2 machine).
//
// V provides:
//   Vec, kWidth, kMaxRows      float vector of kWidth lanes; activation rows per tile
//   zero(), fma(a, b, c), add(a, b), horizontalSum(v)
//   load<kType>(p) -> Pair     2 * kWidth stored elements widened to two float vectors, Pair::v[2]. F32 and F16
//                              in order; BF16 as even and odd lanes (a shift and a mask, no shuffle): weights and
//                              activations are split the same way, so their dot product is unchanged.
//   narrow<kType>(x, out)      kWidth floats rounded to F16 or BF16 (nearest even, bit-exact with fp16.h)
#pragma once

#if !defined(__AVX2__)
#error "float_simd.h is for files compiled with AVX2 or better"
#endif

#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/row_tiles.h"

namespace pc::cpu::floating {
namespace {

template <GgmlType kType>
using Storage = typename Element<kType>::Storage;

// WeightKernels::prepare_activation: the activation row rounded to the weight's type.
template <class V, GgmlType kType>
void prepareRow(const float* x, void* out, int64_t n) {
  Storage<kType>* narrow = static_cast<Storage<kType>*>(out);
  if constexpr (kType == GgmlType::F32) {
    std::memcpy(narrow, x, static_cast<size_t>(n) * sizeof(float));
  } else {
    int64_t i = 0;
    for (; i + V::kWidth <= n; i += V::kWidth) V::template narrow<kType>(x + i, narrow + i);
    for (; i < n; ++i) narrow[i] = Element<kType>::narrow(x[i]);
  }
}

// out[r] = w (n,) . a[r] (n,) for r < kRows: each chunk of 2 * kWidth weights is widened once and multiplied into
// every row's accumulators; the few elements past the last whole chunk are done one by one.
template <class V, GgmlType kType>
struct RowKernel {
  template <int kRows>
  static void tile(int64_t n, const void* weight_row, const uint8_t* activations, size_t stride, float* out) {
    using Vec = typename V::Vec;
    constexpr int64_t kChunk = 2 * V::kWidth;
    // A chunk feeds two accumulators per row; a lone row takes two chunks per step so that four independent FMA
    // chains hide the FMA latency.
    constexpr int kChunksPerStep = kRows == 1 ? 2 : 1;
    const Storage<kType>* w = static_cast<const Storage<kType>*>(weight_row);
    const Storage<kType>* a[kRows];
    Vec acc[kRows][2 * kChunksPerStep];
    for (int r = 0; r < kRows; ++r) {
      a[r] = reinterpret_cast<const Storage<kType>*>(activations + r * stride);
      for (Vec& v : acc[r]) v = V::zero();
    }
    // `slot` is a std::integral_constant, so that the accumulators stay registers.
    const auto step = [&](int64_t i, auto slot) {
      const auto wv = V::template load<kType>(w + i);
      for (int r = 0; r < kRows; ++r) {
        const auto av = V::template load<kType>(a[r] + i);
        acc[r][2 * slot] = V::fma(wv.v[0], av.v[0], acc[r][2 * slot]);
        acc[r][2 * slot + 1] = V::fma(wv.v[1], av.v[1], acc[r][2 * slot + 1]);
      }
    };
    int64_t i = 0;
    for (; i + kChunk * kChunksPerStep <= n; i += kChunk * kChunksPerStep) {
      if constexpr (kRows == 1) prefetchAhead<kChunk * kChunksPerStep * sizeof(w[0])>(w + i);  // decode: prefetch.h
      forEachIndex<kChunksPerStep>([&](auto slot) { step(i + slot * kChunk, slot); });
    }
    for (; i + kChunk <= n; i += kChunk) step(i, std::integral_constant<int, 0>{});

    for (int r = 0; r < kRows; ++r) {
      for (int s = 1; s < 2 * kChunksPerStep; ++s) acc[r][0] = V::add(acc[r][0], acc[r][s]);
      float sum = V::horizontalSum(acc[r][0]);
      for (int64_t j = i; j < n; ++j) sum += Element<kType>::widen(w[j]) * Element<kType>::widen(a[r][j]);
      out[r] = sum;
    }
  }
};

template <class V, GgmlType kType>
const WeightKernels* kernelsFor() {
  static const WeightKernels kernels{kType, kType, 1, prepareRow<V, kType>,
                                     dotRowsInTiles<RowKernel<V, kType>, V::kMaxRows>,
                                     scalarKernels(kType)->dequantize_row};
  return &kernels;
}

template <class V>
const WeightKernels* simdKernels(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return kernelsFor<V, GgmlType::F32>();
    case GgmlType::F16: return kernelsFor<V, GgmlType::F16>();
    case GgmlType::BF16: return kernelsFor<V, GgmlType::BF16>();
    default: return nullptr;
  }
}

}  // namespace
}  // namespace pc::cpu::floating
