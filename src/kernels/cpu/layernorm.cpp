// LayerNorm over the channels of each row, eps 1e-5, biased variance (as PyTorch).
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_range.h"

namespace shardlm {

namespace {
constexpr float kLayerNormEps = 1e-5f;
}

void CpuBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                   const float* weight, const float* bias, int N, int C) {
  const trace::Span span("layernorm_forward", trace::Kind::Kernel, 0, -1, "layernorm");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;
    float* y = out + static_cast<size_t>(n) * C;
    // The sums accumulate in double. x - m cancels where the row's mean is large against its
    // spread (the residual stream), so an error in m reaches every output times rstd; a float
    // sum's error grows with C and with the order the compiler picks (16 lanes or, where the
    // loop is not vectorized as under ASan, one: 16 ulps of the output's scale at C = 768).
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; ++c) sum += x[c];
    const float m = static_cast<float>(sum / C);
    // Two passes (mean, then squared deviations) keep the variance accurate for rows with a
    // large mean, where E[x^2] - m^2 would cancel.
    double sq = 0.0;
#pragma omp simd reduction(+ : sq)
    for (int c = 0; c < C; ++c) {
      const float d = x[c] - m;
      sq += static_cast<double>(d) * d;
    }
    const float s = static_cast<float>(1.0 / std::sqrt(sq / C + kLayerNormEps));
#pragma omp simd
    for (int c = 0; c < C; ++c) y[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

void CpuBackend::layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                    const float* inp, const float* weight, const float* mean,
                                    const float* rstd, int N, int C) {
  const trace::Span span("layernorm_backward", trace::Kind::Kernel, 0, -1, "layernorm");
  // dweight/dbias sum over rows: each thread accumulates its rows into its own partials, then
  // the partials are added in thread order (deterministic, no atomics).
  std::vector<float> partials(static_cast<size_t>(omp_get_max_threads()) * 2 * C, 0.0f);
#pragma omp parallel
  {
    const int tid = omp_get_thread_num();
    const int nthreads = omp_get_num_threads();
    float* dweight_part = partials.data() + static_cast<size_t>(tid) * 2 * C;
    float* dbias_part = dweight_part + C;
    const cpu::IndexRange rows = cpu::split_range(N, tid, nthreads);
    for (size_t n = rows.begin; n < rows.end; ++n) {
      const float* x = inp + n * C;
      const float* dy = dout + n * C;
      float* dx = dinp + n * C;
      const float m = mean[n];
      const float s = rstd[n];
      // dnorm = dy * weight; dx = s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
      float dnorm_sum = 0.0f;
      float dnorm_norm_sum = 0.0f;
#pragma omp simd reduction(+ : dnorm_sum, dnorm_norm_sum)
      for (int c = 0; c < C; ++c) {
        const float norm = (x[c] - m) * s;
        const float dnorm = dy[c] * weight[c];
        dnorm_sum += dnorm;
        dnorm_norm_sum += dnorm * norm;
      }
      const float dnorm_mean = dnorm_sum / C;
      const float dnorm_norm_mean = dnorm_norm_sum / C;
#pragma omp simd
      for (int c = 0; c < C; ++c) {
        const float norm = (x[c] - m) * s;
        const float dnorm = dy[c] * weight[c];
        dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        dweight_part[c] += dy[c] * norm;
        dbias_part[c] += dy[c];
      }
    }
#pragma omp barrier
    const cpu::IndexRange cols = cpu::split_range(C, tid, nthreads, 16);
    for (int t = 0; t < nthreads; ++t) {
      const float* dweight_src = partials.data() + static_cast<size_t>(t) * 2 * C;
      const float* dbias_src = dweight_src + C;
      for (size_t c = cols.begin; c < cols.end; ++c) {
        dweight[c] += dweight_src[c];
        dbias[c] += dbias_src[c];
      }
    }
  }
}

}  // namespace shardlm
