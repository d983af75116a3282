// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// With u the tanh argument, 1 + tanh(u) = 2 sigmoid(2u), so the forward is x * sigmoid(2u):
// one exp, no cancellation for large |x|, and vectorisable with fast_exp.
#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fast_math.h"

namespace shardlm {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
// Below this size the parallel region costs more than it saves.
constexpr size_t kParallelThreshold = 1 << 14;
}  // namespace

void CpuBackend::gelu_forward(float* out, const float* inp, size_t n) {
  const trace::Span span("gelu_forward", trace::Kind::Kernel, 0, -1, "gelu");
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (size_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    out[i] = x / (1.0f + cpu::fast_exp(-2.0f * u));
  }
}

void CpuBackend::gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  const trace::Span span("gelu_backward", trace::Kind::Kernel, 0, -1, "gelu");
  // d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'  with s = sigmoid(2u):
  //      = s + 2 x s (1 - s) u',   u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (size_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    const float s = 1.0f / (1.0f + cpu::fast_exp(-2.0f * u));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    dinp[i] = (s + 2.0f * x * s * (1.0f - s) * du) * dout[i];
  }
}

}  // namespace shardlm
