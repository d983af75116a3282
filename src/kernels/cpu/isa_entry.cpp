// This ISA level's entry point (kernels/cpu/isa.h): its CpuBackend and FMA probe. The only
// symbol of a level's kernels that the rest of shardlm links to (src/CMakeLists.txt makes
// every other one local to the level).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fma_chains.h"
#include "kernels/cpu/isa.h"

// SHARDLM_CPU_ISA_ENTRY is shardlm_cpu_isa_kernels_<level>, set with SHARDLM_CPU_ISA by
// src/CMakeLists.txt.
extern "C" const shardlm::cpu::CpuIsaKernels& SHARDLM_CPU_ISA_ENTRY() {
  static shardlm::CpuBackend backend;
  static const shardlm::cpu::CpuIsaKernels kernels{&backend,
                                                   &shardlm::cpu::measure_fma_peak_at_level};
  return kernels;
}
