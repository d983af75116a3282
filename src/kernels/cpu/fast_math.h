// Vectorisable replacements for std::exp in the hot loops (softmax, cross-entropy, GELU).
// glibc's expf is a scalar call that blocks vectorisation without -ffast-math; this one is
// plain branch-free arithmetic that GCC turns into AVX-512 code, accurate to ~1 ulp over the
// range (Cephes' polynomial with a two-constant Cody-Waite reduction).
#pragma once

#include <bit>
#include <cstdint>

namespace shardlm::cpu {

inline float fast_exp(float x) {
  constexpr float kMinArg = -87.33654f;  // below this exp(x) is subnormal: flush to 0
  constexpr float kMaxArg = 88.72283f;   // above this exp(x) overflows to +inf
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float xc = x > kMaxArg ? kMaxArg : (x < kMinArg ? kMinArg : x);
  // x = n*ln2 + r with |r| <= ln2/2, so exp(x) = 2^n * exp(r).
  const float n = (xc * kLog2e + kRoundMagic) - kRoundMagic;
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < kMinArg ? 0.0f : p * two_n;
}

}  // namespace shardlm::cpu
