// Vectors of the machine's own width (GCC vector extensions): one zmm with AVX-512, one ymm with
// AVX2, one xmm otherwise. Vec16 (vec16.h) is 16 floats everywhere, which GCC handles badly on
// AVX2 in register-heavy or exp-heavy loops: arrays of them go through the stack, and
// fast_exp<float> in an `omp simd` loop stays scalar with branches (measured: micro-kernels 10x,
// GELU 20x slower than in native vectors). Kernels whose speed matters on every ISA use these.
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

#if defined(__AVX512F__)
constexpr int kNativeLanes = 16;
#elif defined(__AVX__)
constexpr int kNativeLanes = 8;
#else
constexpr int kNativeLanes = 4;
#endif
using NativeVec = float __attribute__((vector_size(kNativeLanes * sizeof(float))));

inline NativeVec load_native(const float* p) {
  NativeVec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_native(float* p, NativeVec v) {
  std::memcpy(p, &v, sizeof v);
}
// One vbroadcastss: GCC turns both `NativeVec{} + x` (an add of 0.0f first) and a lane loop
// (a chain of inserts) into several instructions in a micro-kernel's inner loop.
inline NativeVec broadcast_native(float x) {
#if defined(__AVX512F__)
  return reinterpret_cast<NativeVec>(_mm512_set1_ps(x));
#elif defined(__AVX__)
  return reinterpret_cast<NativeVec>(_mm256_set1_ps(x));
#else
  return reinterpret_cast<NativeVec>(_mm_set1_ps(x));
#endif
}

// v with lane i taken from lane i ^ kShift (a butterfly step of the reductions below).
// __builtin_shufflevector (clang, GCC 12+) takes the lane indices as constants.
template <int kShift, size_t... kLane>
inline NativeVec swap_lanes(NativeVec v, std::index_sequence<kLane...>) {
  return __builtin_shufflevector(v, v, (static_cast<int>(kLane) ^ kShift)...);
}
template <int kShift>
inline NativeVec swap_lanes(NativeVec v) {
  return swap_lanes<kShift>(v, std::make_index_sequence<kNativeLanes>{});
}

// Horizontal reductions as a butterfly (log2 lanes shuffles), not a chain of lane extracts:
// the attention's softmax takes one per row of every tile.
template <int kShift = kNativeLanes / 2>
inline float horizontal_sum_native(NativeVec v) {
  if constexpr (kShift == 0)
    return v[0];
  else
    return horizontal_sum_native<kShift / 2>(v + swap_lanes<kShift>(v));
}
template <int kShift = kNativeLanes / 2>
inline float horizontal_max_native(NativeVec v) {
  if constexpr (kShift == 0) {
    return v[0];
  } else {
    const NativeVec w = swap_lanes<kShift>(v);
    return horizontal_max_native<kShift / 2>(w > v ? w : v);
  }
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
