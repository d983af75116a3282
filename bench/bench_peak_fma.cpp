// fp32 FMA peak of this machine: independent AVX-512 FMA chains on one thread and on all
// OpenMP threads. The yardstick for the GEMM numbers in docs/performance.md.
//   usage: bench_peak_fma [seconds per run, default 0.05] [runs, default 40]
// The best of many short runs: on a shared machine a long run is always interrupted by other
// processes, a short one sometimes is not.
#include <omp.h>

#include <cstdio>
#include <exception>

#include "core/parse.h"
#include "kernels/cpu/peak_flops.h"

int main(int argc, char** argv) try {
  const double seconds = argc > 1 ? shardlm::parse_double("seconds per run", argv[1]) : 0.05;
  const int runs = argc > 2 ? shardlm::parse_int("runs", argv[2]) : 40;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const shardlm::cpu::FmaPeak single = shardlm::cpu::measure_fma_peak(seconds, runs);
  omp_set_num_threads(threads);
  const shardlm::cpu::FmaPeak all = shardlm::cpu::measure_fma_peak(seconds, runs);
  std::printf("fp32 FMA peak, GFLOP/s   wall-clock   per-thread CPU time\n");
  std::printf("  %3d thread(s) %14.1f %21.1f\n", 1, single.wall_gflops, single.cpu_gflops);
  std::printf("  %3d thread(s) %14.1f %21.1f\n", threads, all.wall_gflops, all.cpu_gflops);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_peak_fma: %s\n", e.what());
  return 2;
}
