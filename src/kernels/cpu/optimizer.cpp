// Gradient norm and AdamW on flat parameter ranges.
#include <omp.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_range.h"
#include "kernels/cpu/vec16.h"

namespace shardlm {

double CpuBackend::sum_squares(const float* x, size_t n) {
  const trace::Span span("sum_squares", trace::Kind::Kernel, 0, -1, "optimizer");
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

namespace {
// One AdamW step on one element (T = float) or 16 of them (T = Vec16), PyTorch's formula:
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
struct AdamWStep {
  float decay;       // 1 - lr*wd
  float step_size;   // lr / (1 - b1^t)
  float bias2_sqrt;  // sqrt(1 - b2^t)
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, grad_scale;

  template <typename T>
  void apply(float* param, const float* grad, float* m, float* v) const {
    const T g = load<T>(grad) * grad_scale;
    const T m_new = load<T>(m) * beta1 + g * one_minus_beta1;
    const T v_new = load<T>(v) * beta2 + g * g * one_minus_beta2;
    store(m, m_new);
    store(v, v_new);
    store(param, load<T>(param) * decay - step_size * m_new / (sqrt_of(v_new) / bias2_sqrt + eps));
  }

 private:
  template <typename T>
  static T load(const float* p) {
    if constexpr (std::is_same_v<T, float>)
      return *p;
    else
      return cpu::load16(p);
  }
  static void store(float* p, float x) { *p = x; }
  static void store(float* p, cpu::Vec16 x) { cpu::store16(p, x); }
  static float sqrt_of(float x) { return std::sqrt(x); }
  static cpu::Vec16 sqrt_of(cpu::Vec16 x) { return cpu::sqrt16(x); }
};
}  // namespace

void CpuBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay,
                              float grad_scale, int step) {
  const trace::Span span("adamw_update", trace::Kind::Kernel, 0, -1, "optimizer");
  // Bias corrections in double, as PyTorch computes them in Python.
  const AdamWStep update{
      static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay),
      static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step))),
      static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step))),
      beta1,
      beta2,
      1.0f - beta1,
      1.0f - beta2,
      eps,
      grad_scale};
  // Explicit vectors: the compiler does not vectorise std::sqrt in a loop (errno semantics).
  const size_t n_vec = n / cpu::kLanes * cpu::kLanes;
#pragma omp parallel for schedule(static) if (n >= (1u << 15))
  for (size_t i = 0; i < n_vec; i += cpu::kLanes)
    update.apply<cpu::Vec16>(param + i, grad + i, m + i, v + i);
  for (size_t i = n_vec; i < n; ++i) update.apply<float>(param + i, grad + i, m + i, v + i);
}

}  // namespace shardlm
