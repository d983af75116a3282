// Gradient norm and AdamW on flat parameter ranges.
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_range.h"

namespace shardlm {

double CpuBackend::sum_squares(const float* x, size_t n) {
  // Per-thread partial sums added in thread order: the grad norm (and so the clip factor and
  // every later step) is bit-identical from run to run, which resume-exactness relies on.
  std::vector<double> partials(omp_get_max_threads(), 0.0);
  int used_threads = 1;
#pragma omp parallel if (n >= (1u << 16))
  {
    const int tid = omp_get_thread_num();
#pragma omp single
    used_threads = omp_get_num_threads();
    const cpu::IndexRange range = cpu::split_range(n, tid, omp_get_num_threads(), 16);
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = range.begin; i < range.end; ++i) {
      const double value = x[i];
      sum += value * value;
    }
    partials[tid] = sum;
  }
  double total = 0.0;
  for (int t = 0; t < used_threads; ++t) total += partials[t];
  return total;
}

void CpuBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay,
                              float grad_scale, int step) {
  // PyTorch's AdamW (decoupled decay, bias corrections computed in double as Python does):
  //   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
  //   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step)));
  const float bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step)));
  const float one_minus_beta1 = 1.0f - beta1;
  const float one_minus_beta2 = 1.0f - beta2;
#pragma omp parallel for simd schedule(static) if (n >= (1u << 15))
  for (size_t i = 0; i < n; ++i) {
    const float g = grad[i] * grad_scale;
    const float m_new = beta1 * m[i] + one_minus_beta1 * g;
    const float v_new = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = m_new;
    v[i] = v_new;
    param[i] = param[i] * decay - step_size * m_new / (std::sqrt(v_new) / bias2_sqrt + eps);
  }
}

}  // namespace shardlm
