// SwiGLU on the fused gate|up projection: out[n,j] = silu(gu[n,j]) * gu[n,F+j],
// silu(x) = x * sigmoid(x), sigmoid(x) = 1/(1 + exp(-x)) (expf saturates to 0 and 1 cleanly).
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::grid_for;

constexpr int kThreads = 256;

__global__ void swiglu_forward_kernel(float* out, const float* gu, size_t F, size_t total) {
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t n = e / F, j = e % F;
    const float gate = gu[n * 2 * F + j], up = gu[n * 2 * F + F + j];
    out[e] = gate / (1.0f + expf(-gate)) * up;
  }
}

// dgate = dout * up * sigmoid(x) * (1 + x * (1 - sigmoid(x))); dup = dout * silu(x).
__global__ void swiglu_backward_kernel(float* dgu, const float* gu, const float* dout, size_t F,
                                       size_t total) {
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t n = e / F, j = e % F;
    const size_t gate_at = n * 2 * F + j;
    const float x = gu[gate_at], up = gu[gate_at + F], dy = dout[e];
    const float sig = 1.0f / (1.0f + expf(-x));
    dgu[gate_at] = dy * up * sig * (1.0f + x * (1.0f - sig));
    dgu[gate_at + F] = dy * x * sig;
  }
}

}  // namespace

void CudaBackend::swiglu_forward(float* out, const float* gu, int N, int F) {
  const size_t total = static_cast<size_t>(N) * F;
  if (total == 0) return;
  swiglu_forward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(out, gu, F, total);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::swiglu_backward(float* dgu, const float* gu, const float* dout, int N, int F) {
  const size_t total = static_cast<size_t>(N) * F;
  if (total == 0) return;
  swiglu_backward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(dgu, gu, dout, F,
                                                                              total);
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm
