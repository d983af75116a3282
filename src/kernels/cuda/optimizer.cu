// Gradient norm and AdamW on flat parameter ranges.
#include <cmath>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::block_reduce;
using cuda::grid_for;

constexpr int kThreads = 256;
// Blocks of the first sum_squares pass. Fixed (not taken from the device), so the partial
// sums and their order, hence the result's rounding, depend on n alone.
constexpr size_t kSumSquaresBlocks = 512;

// partials[block] = sum of x[i]^2 over the block's grid-stride share, in double.
__global__ void sum_squares_partial_kernel(double* partials, const float* x, size_t n) {
  double sum = 0.0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double value = x[i];
    sum += value * value;
  }
  sum = block_reduce<false>(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// result[0] = sum of partials[0..count), one block.
__global__ void sum_partials_kernel(double* result, const double* partials, int count) {
  double sum = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_reduce<false>(sum);
  if (threadIdx.x == 0) *result = sum;
}

// PyTorch's AdamW (see the CPU backend): p *= 1 - lr*wd; m = b1 m + (1-b1) g;
// v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
struct AdamWStep {
  float decay;       // 1 - lr*wd
  float step_size;   // lr / (1 - b1^t)
  float bias2_sqrt;  // sqrt(1 - b2^t)
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, grad_scale;
};

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, size_t n,
                             AdamWStep s) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i] * s.grad_scale;
    const float m_new = m[i] * s.beta1 + g * s.one_minus_beta1;
    const float v_new = v[i] * s.beta2 + g * g * s.one_minus_beta2;
    m[i] = m_new;
    v[i] = v_new;
    param[i] = param[i] * s.decay - s.step_size * m_new / (sqrtf(v_new) / s.bias2_sqrt + s.eps);
  }
}

}  // namespace

double CudaBackend::sum_squares(const float* x, size_t n) {
  if (n == 0) return 0.0;
  const unsigned blocks = grid_for(n, kThreads, kSumSquaresBlocks);
  // [result | partials...]
  auto* workspace =
      static_cast<double*>(scratch(Scratch::Reduction, (1 + blocks) * sizeof(double)));
  sum_squares_partial_kernel<<<blocks, kThreads, 0, stream_>>>(workspace + 1, x, n);
  CUDA_CHECK_LAUNCH();
  sum_partials_kernel<<<1, kThreads, 0, stream_>>>(workspace, workspace + 1,
                                                   static_cast<int>(blocks));
  CUDA_CHECK_LAUNCH();
  double result = 0.0;
  copy_to_host(&result, workspace, sizeof(double));
  return result;
}

void CudaBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                               float lr, float beta1, float beta2, float eps, float weight_decay,
                               float grad_scale, int step) {
  if (n == 0) return;
  // Bias corrections in double, as PyTorch computes them in Python.
  const AdamWStep s{static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay),
                    static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step))),
                    static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step))),
                    beta1,
                    beta2,
                    1.0f - beta1,
                    1.0f - beta2,
                    eps,
                    grad_scale};
  adamw_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(param, grad, m, v, n, s);
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm
