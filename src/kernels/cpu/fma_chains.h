// This ISA level's FMA probe (fma_chains.cpp), reached through kernels/cpu/peak_flops.h.
#pragma once

#include "kernels/cpu/isa_namespace.h"
#include "kernels/cpu/peak_flops.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

// measure_fma_peak (kernels/cpu/peak_flops.h) at this level's vector width and register count.
FmaPeak measure_fma_peak_at_level(double seconds, int repeats);

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
