// Row-major single-precision GEMM for the CPU kernels, backed by oneDNN's dnnl_sgemm.
//
// Debian's libdnnl is built with the OpenMP runtime (DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP,
// linked against libgomp, the same runtime as our kernels): each call opens its own parallel
// region over all OMP threads. Call it from serial code only, never inside an
// `omp parallel` region (it would silently run on one thread there); sgemm() checks this.
#pragma once

#include <cstdint>

namespace shardlm::cpu {

enum class Transpose { No, Yes };

// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, all row-major. op(X) is X or X^T;
// lda/ldb/ldc are the row strides (in elements) of A, B, C as stored, so A is [M,lda] when
// not transposed and [K,lda] when transposed. With beta == 0, C is write-only (may hold NaN).
// Throws shardlm::Error if oneDNN reports a failure.
void sgemm(Transpose trans_a, Transpose trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// The instruction set oneDNN's GEMMs run at (its effective ISA: the machine's best, or the
// level SHARDLM_ISA forces, which caps oneDNN as well), e.g. "avx2", "avx512_core_bf16".
const char* gemm_isa_name();

}  // namespace shardlm::cpu
