#include "kernels/cpu/gemm.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "core/error.h"

namespace shardlm::cpu {

namespace {
const char* status_name(dnnl_status_t status) {
  switch (status) {
    case dnnl_success:
      return "success";
    case dnnl_out_of_memory:
      return "out of memory";
    case dnnl_invalid_arguments:
      return "invalid arguments";
    case dnnl_unimplemented:
      return "unimplemented";
    case dnnl_runtime_error:
      return "runtime error";
    default:
      return "unknown status";
  }
}
}  // namespace

void sgemm(Transpose trans_a, Transpose trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  SHARDLM_CHECK(!omp_in_parallel(),
                "sgemm called inside an OpenMP parallel region (oneDNN would run on one thread)");
  if (M == 0 || N == 0) return;
  const char ta = trans_a == Transpose::Yes ? 'T' : 'N';
  const char tb = trans_b == Transpose::Yes ? 'T' : 'N';
  const dnnl_status_t status = dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (status != dnnl_success) {
    throw_error("oneDNN", "dnnl_sgemm", __FILE__, __LINE__,
                std::string(status_name(status)) + " (transa=" + ta + " transb=" + tb +
                    " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                    " K=" + std::to_string(K) + " lda=" + std::to_string(lda) +
                    " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) + ")");
  }
}

}  // namespace shardlm::cpu
