#include "kernels/cpu/gemm.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "kernels/cpu/isa.h"

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

// oneDNN picks its kernels by cpuid, not by SHARDLM_ISA. A level forced below the machine's
// best caps oneDNN at that level too, so that a forced run executes (and measures) what a
// machine of that level would. Once, before the first oneDNN call (oneDNN takes no cap after
// it); an explicit ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA wins.
void cap_onednn_isa() {
  static const bool capped = [] {
    if (std::getenv("ONEDNN_MAX_CPU_ISA") || std::getenv("DNNL_MAX_CPU_ISA")) return false;
    const CpuIsa isa = running_cpu_isa();
    if (isa == supported_cpu_isas().back()) return false;
    const dnnl_cpu_isa_t cap = isa == CpuIsa::sse    ? dnnl_cpu_isa_sse41
                               : isa == CpuIsa::avx2 ? dnnl_cpu_isa_avx2
                                                     : dnnl_cpu_isa_avx512_core;
    const dnnl_status_t status = dnnl_set_max_cpu_isa(cap);
    SHARDLM_CHECK(status == dnnl_success,
                  std::string("oneDNN refused the ISA cap of SHARDLM_ISA=") + cpu_isa_name(isa) +
                      ": " + status_name(status));
    return true;
  }();
  (void)capped;
}

}  // namespace

const char* gemm_isa_name() {
  cap_onednn_isa();
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    default:
      return "other";
  }
}

void sgemm(Transpose trans_a, Transpose trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  SHARDLM_CHECK(!omp_in_parallel(),
                "sgemm called inside an OpenMP parallel region (oneDNN would run on one thread)");
  if (M == 0 || N == 0) return;
  cap_onednn_isa();
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
