// Vectorisable replacements for std::exp in the hot loops (softmax, cross-entropy, GELU).
// glibc's expf is a scalar call that blocks vectorisation without -ffast-math; this one is
// plain branch-free arithmetic, accurate to ~1 ulp over the range (Cephes' polynomial with a
// two-constant Cody-Waite reduction). It works on float (inside loops GCC vectorises) and on
// Vec16, a GCC vector of 16 floats (one AVX-512 register with -march=native), for kernels
// that are written with explicit vectors.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/vec16.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

// exp(x) for float, Vec16 or another GCC vector of floats (e.g. the native-width vectors of
// tile_gemm.h).
template <typename T>
inline T fast_exp(T x) {
  constexpr bool kVector = !std::is_same_v<T, float>;
  const auto splat = [](float c) -> T {
    if constexpr (kVector)
      return T{} + c;
    else
      return c;
  };
  const T min_arg = splat(-87.33654f);       // below this exp(x) is subnormal: flush to 0
  const T max_arg = splat(88.72283f);        // above this exp(x) overflows to +inf
  const T round_magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const T xc = x > max_arg ? max_arg : (x < min_arg ? min_arg : x);
  // The same with NaN taken to min_arg: n, which is converted to an integer, stays finite (a
  // NaN there is undefined); r, and so the result, stay NaN.
  const T xn = x > max_arg ? max_arg : (x >= min_arg ? x : min_arg);
  // x = n*ln2 + r with |r| <= ln2/2, so exp(x) = 2^n * exp(r).
  const T n = (xn * 1.44269504088896341f + round_magic) - round_magic;
  T r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  T p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  T two_n;
  if constexpr (kVector) {
    typedef int32_t Int __attribute__((vector_size(sizeof(T))));
    two_n = std::bit_cast<T>((__builtin_convertvector(n, Int) + 127) << 23);
  } else {
    two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  }
  return x < min_arg ? splat(0.0f) : p * two_n;
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
