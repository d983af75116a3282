// Elementwise vector ops (residual adds, scaling).
#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"

namespace shardlm {

namespace {
// Below this size the parallel region costs more than it saves.
constexpr size_t kParallelThreshold = 1 << 15;
}  // namespace

void CpuBackend::add(float* out, const float* a, const float* b, size_t n) {
  const trace::Span span("add", trace::Kind::Kernel, 0, -1, "elementwise");
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void CpuBackend::add_inplace(float* acc, const float* x, size_t n) {
  const trace::Span span("add_inplace", trace::Kind::Kernel, 0, -1, "elementwise");
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (size_t i = 0; i < n; ++i) acc[i] += x[i];
}

void CpuBackend::scale_inplace(float* x, float s, size_t n) {
  const trace::Span span("scale_inplace", trace::Kind::Kernel, 0, -1, "elementwise");
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace shardlm
