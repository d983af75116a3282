// RMSNorm over the channels of each row: out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2)
// + eps) (Llama's; no mean subtraction, no bias).
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_range.h"

namespace shardlm {

void CpuBackend::rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                                 int N, int C, float eps) {
  const trace::Span span("rmsnorm_forward", trace::Kind::Kernel, 0, -1, "rmsnorm");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;
    float* y = out + static_cast<size_t>(n) * C;
    float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
    for (int c = 0; c < C; ++c) sq += x[c] * x[c];
    const float s = 1.0f / std::sqrt(sq / C + eps);
#pragma omp simd
    for (int c = 0; c < C; ++c) y[c] = x[c] * s * weight[c];
    rstd[n] = s;
  }
}

void CpuBackend::rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                  const float* weight, const float* rstd, int N, int C) {
  const trace::Span span("rmsnorm_backward", trace::Kind::Kernel, 0, -1, "rmsnorm");
  // dweight sums over rows: per-thread partials added in thread order (deterministic), as
  // layernorm_backward.
  std::vector<float> partials(static_cast<size_t>(omp_get_max_threads()) * C, 0.0f);
#pragma omp parallel
  {
    const int tid = omp_get_thread_num();
    const int nthreads = omp_get_num_threads();
    float* dweight_part = partials.data() + static_cast<size_t>(tid) * C;
    const cpu::IndexRange rows = cpu::split_range(N, tid, nthreads);
    for (size_t n = rows.begin; n < rows.end; ++n) {
      const float* x = inp + n * C;
      const float* dy = dout + n * C;
      float* dx = dinp + n * C;
      const float s = rstd[n];
      // With norm = x * s and dnorm = dy * weight: dx = s * (dnorm - norm * mean(dnorm * norm)).
      float dnorm_norm_sum = 0.0f;
#pragma omp simd reduction(+ : dnorm_norm_sum)
      for (int c = 0; c < C; ++c) dnorm_norm_sum += dy[c] * weight[c] * x[c] * s;
      const float dnorm_norm_mean = dnorm_norm_sum / C;
#pragma omp simd
      for (int c = 0; c < C; ++c) {
        const float norm = x[c] * s;
        dx[c] += (dy[c] * weight[c] - norm * dnorm_norm_mean) * s;
        dweight_part[c] += dy[c] * norm;
      }
    }
#pragma omp barrier
    const cpu::IndexRange cols = cpu::split_range(C, tid, nthreads, 16);
    for (int t = 0; t < nthreads; ++t) {
      const float* src = partials.data() + static_cast<size_t>(t) * C;
      for (size_t c = cols.begin; c < cols.end; ++c) dweight[c] += src[c];
    }
  }
}

}  // namespace shardlm
