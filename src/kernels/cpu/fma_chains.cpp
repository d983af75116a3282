// The fp32 FMA peak of this ISA level: independent chains of vector FMAs, as many as cover FMA
// latency x FMA ports and no more than the level's vector registers hold (a chain that spills
// measures the store-to-load path instead: the old 16 chains of 16 floats needed 32 registers,
// and on an AVX2 CPU, 16 ymm registers, reported a quarter of the peak).
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/fma_chains.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

namespace {

// One level's vector: its width and one multiply-add (a fused FMA where the level has one).
#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kChains = 16;  // of 32 zmm: enough for 4-cycle latency x 2 ports (Zen 4/5, SKX)
inline Vec splat(float x) {
  return _mm512_set1_ps(x);
}
inline Vec madd(Vec acc, Vec a, Vec b) {
  return _mm512_fmadd_ps(acc, a, b);
}
inline float first_lane(Vec v) {
  return _mm512_cvtss_f32(v);
}
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kChains = 12;  // of 16 ymm (2 hold a, b): covers 5-cycle latency x 2 ports (Zen 2)
inline Vec splat(float x) {
  return _mm256_set1_ps(x);
}
inline Vec madd(Vec acc, Vec a, Vec b) {
  return _mm256_fmadd_ps(acc, a, b);
}
inline float first_lane(Vec v) {
  return _mm256_cvtss_f32(v);
}
#else
using Vec = __m128;
constexpr int kLanes = 4;
constexpr int kChains = 12;  // of 16 xmm; no FMA: a multiply and an add (2 flops per lane)
inline Vec splat(float x) {
  return _mm_set1_ps(x);
}
inline Vec madd(Vec acc, Vec a, Vec b) {
  return _mm_add_ps(_mm_mul_ps(acc, a), b);
}
inline float first_lane(Vec v) {
  return _mm_cvtss_f32(v);
}
#endif

constexpr int64_t kItersPerCheck = 1 << 16;

// Returns the number of iterations done (each kChains vector multiply-adds); `sink` keeps the
// accumulators alive so the loop is not optimised away.
int64_t fma_chains(double seconds, float* sink) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = splat(1.0f + 0.01f * c);
  // Read through volatile so the compiler cannot fold the chains (it can otherwise see that
  // acc * a + b converges); the fixed point is 1, so values stay normal forever.
  volatile float a_value = 0.9999999f, b_value = 1e-7f;
  const Vec a = splat(a_value);
  const Vec b = splat(b_value);
  int64_t iters = 0;
  const double start = omp_get_wtime();
  do {
    for (int64_t i = 0; i < kItersPerCheck; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = madd(acc[c], a, b);
    }
    iters += kItersPerCheck;
  } while (omp_get_wtime() - start < seconds);
  float total = 0.0f;
  for (int c = 0; c < kChains; ++c) total += first_lane(acc[c]);
  *sink = total;
  return iters;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

}  // namespace

FmaPeak measure_fma_peak_at_level(double seconds, int repeats) {
  constexpr double kFlopsPerIter = kChains * kLanes * 2;
  FmaPeak best{0.0, 0.0};
  for (int r = 0; r < repeats; ++r) {
    int64_t total_iters = 0;
    double cpu_rate = 0.0;  // sum of per-thread iterations per CPU second
    float sink = 0.0f;
    const double start = omp_get_wtime();
#pragma omp parallel reduction(+ : total_iters, cpu_rate, sink)
    {
      const double cpu_start = thread_cpu_seconds();
      const int64_t iters = fma_chains(seconds, &sink);
      total_iters += iters;
      cpu_rate += iters / (thread_cpu_seconds() - cpu_start);
    }
    const double elapsed = omp_get_wtime() - start;
    if (sink == 0.0f) continue;  // never true (sink ~ kChains * threads); keeps the work alive
    best.wall_gflops = std::max(best.wall_gflops, total_iters * kFlopsPerIter / elapsed * 1e-9);
    best.cpu_gflops = std::max(best.cpu_gflops, cpu_rate * kFlopsPerIter * 1e-9);
  }
  return best;
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
