// Explicit 16-float vectors (GCC/Clang vector extensions) for the kernels whose loops the
// compiler does not vectorise well on its own (reductions, register-blocked micro-kernels).
// At the avx512 level (kernels/cpu/isa.h) a Vec16 is one zmm register; at avx2 the compiler
// splits it into two ymm registers, at sse into four xmm ones, so the code stays portable.
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

using Vec16 = float __attribute__((vector_size(64)));
using Int16 = int32_t __attribute__((vector_size(64)));
constexpr int kLanes = 16;

inline Vec16 load16(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, Vec16 v) {
  std::memcpy(p, &v, sizeof v);
}
inline Vec16 splat16(float x) {
  return Vec16{} + x;
}
inline float horizontal_sum(Vec16 v) {
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
inline float horizontal_max(Vec16 v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// Lane-wise sqrt. GCC vector extensions have no sqrt, and std::sqrt in a loop does not
// vectorise without -fno-math-errno (the errno path); AVX-512 has a direct instruction.
inline Vec16 sqrt16(Vec16 x) {
#if defined(__AVX512F__)
  // The maskz form: GCC 12 warns about _mm512_sqrt_ps's undefined pass-through operand.
  return reinterpret_cast<Vec16>(_mm512_maskz_sqrt_ps(0xFFFF, reinterpret_cast<__m512>(x)));
#else
  for (int i = 0; i < kLanes; ++i) x[i] = std::sqrt(x[i]);
  return x;
#endif
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
