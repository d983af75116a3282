// Elementwise vector ops (residual adds, scaling): grid-stride loops on the backend's stream.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::grid_for;

constexpr int kThreads = 256;

__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void add_inplace_kernel(float* acc, const float* x, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    acc[i] += x[i];
}

__global__ void scale_inplace_kernel(float* x, float s, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    x[i] *= s;
}

}  // namespace

void CudaBackend::add(float* out, const float* a, const float* b, size_t n) {
  if (n == 0) return;
  add_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(out, a, b, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::add_inplace(float* acc, const float* x, size_t n) {
  if (n == 0) return;
  add_inplace_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(acc, x, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::scale_inplace(float* x, float s, size_t n) {
  if (n == 0) return;
  scale_inplace_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(x, s, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm
