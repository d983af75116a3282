// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// With u the tanh argument, 1 + tanh(u) = 2 sigmoid(2u), so the forward is x * sigmoid(2u):
// one exp, no cancellation for large |x|. The formulas are templates over float and NativeVec
// (native_vec.h): whole vectors through the vector form, the last n % kNativeLanes elements
// through the scalar one (GCC leaves fast_exp<float> scalar in an `omp simd` loop on AVX2).
#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/native_vec.h"

namespace shardlm {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
// Below this size the parallel region costs more than it saves.
constexpr size_t kParallelThreshold = 1 << 14;

template <typename T>
T gelu_of(T x) {
  const T u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return x / (1.0f + cpu::fast_exp(-2.0f * u));
}

// d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'  with s = sigmoid(2u):
//      = s + 2 x s (1 - s) u',   u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
template <typename T>
T gelu_grad_of(T x, T dout) {
  const T u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  const T s = 1.0f / (1.0f + cpu::fast_exp(-2.0f * u));
  const T du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  return (s + 2.0f * x * s * (1.0f - s) * du) * dout;
}
}  // namespace

void CpuBackend::gelu_forward(float* out, const float* inp, size_t n) {
  const trace::Span span("gelu_forward", trace::Kind::Kernel, 0, -1, "gelu");
  using cpu::kNativeLanes;
  const size_t vectors = n / kNativeLanes;
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (size_t v = 0; v < vectors; ++v) {
    const size_t i = v * kNativeLanes;
    cpu::store_native(out + i, gelu_of(cpu::load_native(inp + i)));
  }
  for (size_t i = vectors * kNativeLanes; i < n; ++i) out[i] = gelu_of(inp[i]);
}

void CpuBackend::gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  const trace::Span span("gelu_backward", trace::Kind::Kernel, 0, -1, "gelu");
  using cpu::kNativeLanes;
  const size_t vectors = n / kNativeLanes;
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (size_t v = 0; v < vectors; ++v) {
    const size_t i = v * kNativeLanes;
    cpu::store_native(dinp + i,
                      gelu_grad_of(cpu::load_native(inp + i), cpu::load_native(dout + i)));
  }
  for (size_t i = vectors * kNativeLanes; i < n; ++i) dinp[i] = gelu_grad_of(inp[i], dout[i]);
}

}  // namespace shardlm
