// The CPU's instruction-set levels the kernels are built for, and which one runs.
//
// The kernels of kernels/cpu/ are compiled once per level (src/CMakeLists.txt; see
// kernels/cpu/isa_namespace.h); the rest of shardlm is built for the x86-64-v2 baseline, so
// one binary runs on any x86-64-v2 CPU and picks the fastest level the CPU has at start-up.
// SHARDLM_ISA=sse|avx2|avx512 forces a level (refused when the CPU lacks it). oneDNN's GEMMs
// dispatch on their own.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/peak_flops.h"

namespace shardlm::cpu {

// Lowest first. Each is an x86-64 micro-architecture level (the -march flag it is built with):
//   sse     x86-64-v2: SSE4.2, no AVX (4-float vectors, 16 xmm registers)
//   avx2    x86-64-v3: AVX2 + FMA (8-float vectors, 16 ymm registers)
//   avx512  x86-64-v4: AVX-512 F/BW/DQ/VL (16-float vectors, 32 zmm registers)
enum class CpuIsa { sse, avx2, avx512 };

const char* cpu_isa_name(CpuIsa isa);
std::optional<CpuIsa> parse_cpu_isa(std::string_view name);
// "sse, avx2, avx512": every level this binary has kernels for.
std::string cpu_isa_names();

// Whether this CPU (and OS: saved vector state) can run the level.
bool cpu_supports(CpuIsa isa);
// The levels this CPU can run, lowest first (always at least sse on an x86-64-v2 CPU).
std::vector<CpuIsa> supported_cpu_isas();

// The level `forced` names (the value of SHARDLM_ISA; empty: the best the CPU supports).
// Throws shardlm::Error naming SHARDLM_ISA and the CPU's levels for an unknown or unsupported
// level.
CpuIsa choose_cpu_isa(std::string_view forced);
// The level this process runs: choose_cpu_isa(getenv("SHARDLM_ISA")), decided once.
CpuIsa running_cpu_isa();

// What one level's compilation of kernels/cpu/ provides (kernels/cpu/isa_entry.cpp).
struct CpuIsaKernels {
  KernelBackend* backend;
  FmaPeak (*measure_fma_peak)(double seconds, int repeats);
};
// The kernels of a level (this CPU must support it: cpu_supports).
const CpuIsaKernels& cpu_isa_kernels(CpuIsa isa);

}  // namespace shardlm::cpu

// The entry points, one per level, defined by kernels/cpu/isa_entry.cpp's compilations: the
// only global symbols of a level's object (src/CMakeLists.txt), unmangled for objcopy.
extern "C" {
const shardlm::cpu::CpuIsaKernels& shardlm_cpu_isa_kernels_sse();
const shardlm::cpu::CpuIsaKernels& shardlm_cpu_isa_kernels_avx2();
const shardlm::cpu::CpuIsaKernels& shardlm_cpu_isa_kernels_avx512();
}
