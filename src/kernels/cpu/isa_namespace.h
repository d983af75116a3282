// The namespace of one ISA level's kernels. src/CMakeLists.txt compiles every .cpp directly in
// kernels/cpu/ once per level (sse, avx2, avx512) with that level's -march flags and
// SHARDLM_CPU_ISA set to isa_<level>; kernels/cpu/portable/ is compiled once. Every kernel
// header and source opens
//     namespace shardlm::cpu {  inline namespace SHARDLM_CPU_ISA {   (helpers)
//     namespace shardlm {  inline namespace SHARDLM_CPU_ISA {        (CpuBackend)
// so that each level's functions, inline ones included, are distinct symbols: an AVX-512 copy
// of an inline helper can never be picked by the linker for the SSE level (that would be a
// SIGILL on an older CPU). Code inside refers to them unqualified or as cpu::name, as before.
// tests/lint/check_isa_namespaces.py checks that kernels/cpu/ files follow this.
#pragma once

#ifndef SHARDLM_CPU_ISA
#error \
    "kernels/cpu/*.cpp are compiled once per ISA level (SHARDLM_CPU_ISA, src/CMakeLists.txt); include kernels/cpu/isa.h or backend.h from elsewhere"
#endif
