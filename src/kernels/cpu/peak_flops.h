// The machine's fp32 FMA peak, measured: the yardstick the GEMM benchmark reports against.
#pragma once

namespace shardlm::cpu {

// Runs independent chains of 16-wide fp32 FMAs on every OpenMP thread for about `seconds`
// and returns the best GFLOP/s (2 flops per FMA lane) of `repeats` timed runs.
double measure_fma_peak_gflops(double seconds, int repeats);

}  // namespace shardlm::cpu
