// SwiGLU on the fused gate|up projection: out[n,j] = silu(gate) * up with gate = gu[n,j],
// up = gu[n,F+j], silu(x) = x * sigmoid(x). sigmoid(x) = 1/(1 + exp(-x)) with fast_exp, which
// saturates cleanly: exp(-x) clamps to ~1.7e38 for very negative x (sigmoid -> 0) and flushes
// to 0 for large x (sigmoid -> 1), so no input produces a NaN.
#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fast_math.h"

namespace shardlm {

namespace {
// Below this many elements the parallel region costs more than it saves.
constexpr long kParallelThreshold = 1 << 14;
}  // namespace

void CpuBackend::swiglu_forward(float* out, const float* gu, int N, int F) {
  const trace::Span span("swiglu_forward", trace::Kind::Kernel, 0, -1, "swiglu");
#pragma omp parallel for schedule(static) if (static_cast <long>(N) * F >= kParallelThreshold)
  for (int n = 0; n < N; ++n) {
    const float* gate = gu + static_cast<size_t>(n) * 2 * F;
    const float* up = gate + F;
    float* y = out + static_cast<size_t>(n) * F;
#pragma omp simd
    for (int j = 0; j < F; ++j) y[j] = gate[j] / (1.0f + cpu::fast_exp(-gate[j])) * up[j];
  }
}

void CpuBackend::swiglu_backward(float* dgu, const float* gu, const float* dout, int N, int F) {
  const trace::Span span("swiglu_backward", trace::Kind::Kernel, 0, -1, "swiglu");
  // d silu(x)/dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))
#pragma omp parallel for schedule(static) if (static_cast <long>(N) * F >= kParallelThreshold)
  for (int n = 0; n < N; ++n) {
    const float* gate = gu + static_cast<size_t>(n) * 2 * F;
    const float* up = gate + F;
    const float* dy = dout + static_cast<size_t>(n) * F;
    float* dgate = dgu + static_cast<size_t>(n) * 2 * F;
    float* dup = dgate + F;
#pragma omp simd
    for (int j = 0; j < F; ++j) {
      const float x = gate[j];
      const float sig = 1.0f / (1.0f + cpu::fast_exp(-x));
      dgate[j] = dy[j] * up[j] * sig * (1.0f + x * (1.0f - sig));
      dup[j] = dy[j] * x * sig;
    }
  }
}

}  // namespace shardlm
