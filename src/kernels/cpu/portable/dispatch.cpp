// The CPU backend and FMA probe of the running ISA level (kernels/cpu/isa.h).
#include <omp.h>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/peak_flops.h"

namespace shardlm {

namespace cpu {

const CpuIsaKernels& cpu_isa_kernels(CpuIsa isa) {
  SHARDLM_CHECK(cpu_supports(isa), std::string("ISA level ") + cpu_isa_name(isa) +
                                       " asked for on a CPU that lacks it");
  switch (isa) {
    case CpuIsa::sse:
      return shardlm_cpu_isa_kernels_sse();
    case CpuIsa::avx2:
      return shardlm_cpu_isa_kernels_avx2();
    case CpuIsa::avx512:
      return shardlm_cpu_isa_kernels_avx512();
  }
  fail("unknown ISA level");
}

FmaPeak measure_fma_peak(double seconds, int repeats) {
  return cpu_isa_kernels(running_cpu_isa()).measure_fma_peak(seconds, repeats);
}

double core_peak_flops() {
  return measure_fma_peak(0.02, 5).cpu_gflops * 1e9 / omp_get_max_threads();
}

}  // namespace cpu

KernelBackend& cpu_backend() {
  return *cpu::cpu_isa_kernels(cpu::running_cpu_isa()).backend;
}

}  // namespace shardlm
