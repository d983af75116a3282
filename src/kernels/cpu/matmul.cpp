// Linear layers: out = inp @ weight^T + bias, with the weight stored [OC, C] (PyTorch's
// nn.Linear layout). All three products are oneDNN sgemm calls.
#include <omp.h>

#include <cstring>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/thread_range.h"

namespace shardlm {

using cpu::Transpose;

void CpuBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int N, int C, int OC) {
  const trace::Span span("matmul_forward", trace::Kind::Kernel, 0, -1, "matmul");
  float beta = 0.0f;
  if (bias != nullptr) {
    // Start every row from the bias and let the GEMM accumulate onto it (beta = 1): one pass
    // over `out` instead of a second bias-add pass after the GEMM.
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n)
      std::memcpy(out + static_cast<size_t>(n) * OC, bias, sizeof(float) * OC);
    beta = 1.0f;
  }
  // out[N,OC] = inp[N,C] @ weight[OC,C]^T
  cpu::sgemm(Transpose::No, Transpose::Yes, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

void CpuBackend::matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int N, int C, int OC) {
  const trace::Span span("matmul_backward", trace::Kind::Kernel, 0, -1, "matmul");
  // dinp[N,C] = dout[N,OC] @ weight[OC,C]
  if (dinp != nullptr) {
    cpu::sgemm(Transpose::No, Transpose::No, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
  }
  // dweight[OC,C] += dout[N,OC]^T @ inp[N,C]
  cpu::sgemm(Transpose::Yes, Transpose::No, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
  if (dbias != nullptr) {
    // Column sums: split the columns between threads; each sums all rows in order.
    // The batch's sum is formed first and then added, as PyTorch accumulates .grad.
#pragma omp parallel
    {
      const cpu::IndexRange cols =
          cpu::split_range(OC, omp_get_thread_num(), omp_get_num_threads(), 16);
      std::vector<float> sums(cols.end - cols.begin, 0.0f);
      for (int n = 0; n < N; ++n) {
        const float* row = dout + static_cast<size_t>(n) * OC + cols.begin;
#pragma omp simd
        for (size_t j = 0; j < sums.size(); ++j) sums[j] += row[j];
      }
      for (size_t j = 0; j < sums.size(); ++j) dbias[cols.begin + j] += sums[j];
    }
  }
}

}  // namespace shardlm
