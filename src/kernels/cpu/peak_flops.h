// The machine's fp32 FMA peak, measured: the yardstick the GEMM benchmark, bench_train_step's
// "% of peak" and MFU report against. Portable (kernels/cpu/portable/peak_flops.cpp): it runs
// the probe of the ISA level the kernels run at (kernels/cpu/isa.h), sized to that level's
// vector registers (kernels/cpu/fma_chains.cpp).
#pragma once

namespace shardlm::cpu {

struct FmaPeak {
  // Best wall-clock rate of all OpenMP threads together.
  double wall_gflops;
  // Sum over threads of each thread's FMA work divided by its own CPU time: what all threads
  // reach when none of them is descheduled. Equal to wall_gflops on a quiet machine, and
  // still meaningful on a shared one.
  double cpu_gflops;
};

// Runs independent chains of FMAs at the running ISA level's vector width on every OpenMP
// thread for about `seconds`, `repeats` times, and returns the best rates (2 flops per FMA
// lane). Many short runs find an undisturbed one on a shared machine more often than a few
// long ones.
FmaPeak measure_fma_peak(double seconds, int repeats);

// fp32 FMA peak of one core, in FLOP/s, at the ISA level the kernels run: each thread's rate
// per CPU-second of its own, so a loaded machine does not lower it. A few 20 ms runs: about
// 0.1 s. MFU's yardstick and the planner's CPU peak.
double core_peak_flops();

}  // namespace shardlm::cpu
