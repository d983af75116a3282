#include "kernels/cpu/peak_flops.h"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/vec16.h"

namespace shardlm::cpu {

namespace {
// Enough independent chains to cover FMA latency x FMA ports (4 cycles x 2 ports on Zen 4/5
// and Skylake-X), few enough to stay in the 32 vector registers.
constexpr int kChains = 16;
constexpr int64_t kItersPerCheck = 1 << 16;

// A Vec16 is one AVX-512 register with -march=native on an AVX-512 machine and narrower
// registers elsewhere, so the loop measures whatever the CPU has.
// Returns the number of FMA iterations done (each kChains vector FMAs); `sink` keeps the
// accumulators alive so the loop is not optimised away.
int64_t fma_chains(double seconds, float* sink) {
  Vec16 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = Vec16{} + 1.0f + 0.01f * c;
  // Read through volatile so the compiler cannot fold the chains (it can otherwise see that
  // acc * a + b converges); the fixed point is 1, so values stay normal forever.
  volatile float a_value = 0.9999999f, b_value = 1e-7f;
  const Vec16 a = Vec16{} + a_value;
  const Vec16 b = Vec16{} + b_value;
  int64_t iters = 0;
  const double start = omp_get_wtime();
  do {
    for (int64_t i = 0; i < kItersPerCheck; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
    }
    iters += kItersPerCheck;
  } while (omp_get_wtime() - start < seconds);
  Vec16 total = acc[0];
  for (int c = 1; c < kChains; ++c) total += acc[c];
  *sink = total[0];
  return iters;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

}  // namespace

FmaPeak measure_fma_peak(double seconds, int repeats) {
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

}  // namespace shardlm::cpu
