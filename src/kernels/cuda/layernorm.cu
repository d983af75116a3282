// LayerNorm over the channels of each row, eps 1e-5, biased variance (as PyTorch). One warp
// per row; the weight and bias gradients are fixed-order column sums (cuda_common.cuh).
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::ceil_div;
using cuda::kWarp;
using cuda::warp_sum;

constexpr float kLayerNormEps = 1e-5f;
constexpr int kRowsPerBlock = 8;  // one warp each

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, int N, int C) {
  const int n = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;
  const float* x = inp + static_cast<size_t>(n) * C;
  float* y = out + static_cast<size_t>(n) * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += kWarp) sum += x[c];
  const float m = warp_sum(sum) / C;
  // Two passes (mean, then squared deviations), as the CPU backend: accurate for rows with a
  // large mean.
  float sq = 0.0f;
  for (int c = lane; c < C; c += kWarp) sq += (x[c] - m) * (x[c] - m);
  const float s = 1.0f / sqrtf(warp_sum(sq) / C + kLayerNormEps);
  for (int c = lane; c < C; c += kWarp) y[c] = (x[c] - m) * s * weight[c] + bias[c];
  if (lane == 0) {
    mean[n] = m;
    rstd[n] = s;
  }
}

// dinp[n, :] += s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout * weight.
__global__ void layernorm_backward_input_kernel(float* dinp, const float* dout, const float* inp,
                                                const float* weight, const float* mean,
                                                const float* rstd, int N, int C) {
  const int n = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;
  const float* x = inp + static_cast<size_t>(n) * C;
  const float* dy = dout + static_cast<size_t>(n) * C;
  float* dx = dinp + static_cast<size_t>(n) * C;
  const float m = mean[n], s = rstd[n];
  float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
  for (int c = lane; c < C; c += kWarp) {
    const float dnorm = dy[c] * weight[c];
    dnorm_sum += dnorm;
    dnorm_norm_sum += dnorm * (x[c] - m) * s;
  }
  const float dnorm_mean = warp_sum(dnorm_sum) / C;
  const float dnorm_norm_mean = warp_sum(dnorm_norm_sum) / C;
  for (int c = lane; c < C; c += kWarp) {
    const float norm = (x[c] - m) * s;
    dx[c] += (dy[c] * weight[c] - dnorm_mean - norm * dnorm_norm_mean) * s;
  }
}

// (dout * norm, dout) at (n, c): the summands of dweight and dbias.
struct LayerNormParamGrads {
  const float* dout;
  const float* inp;
  const float* mean;
  const float* rstd;
  int C;
  __device__ cuda::ColumnValues<2> operator()(int n, int c) const {
    const size_t i = static_cast<size_t>(n) * C + c;
    return {{dout[i] * (inp[i] - mean[n]) * rstd[n], dout[i]}};
  }
};

}  // namespace

void CudaBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                    const float* weight, const float* bias, int N, int C) {
  if (N == 0) return;
  layernorm_forward_kernel<<<ceil_div(N, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream_>>>(
      out, mean, rstd, inp, weight, bias, N, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                     const float* inp, const float* weight, const float* mean,
                                     const float* rstd, int N, int C) {
  if (N == 0) return;
  layernorm_backward_input_kernel<<<ceil_div(N, kRowsPerBlock), kRowsPerBlock * kWarp, 0,
                                    stream_>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  CUDA_CHECK_LAUNCH();
  auto* workspace = static_cast<float*>(
      scratch(Scratch::ColumnPartials, cuda::column_sums_workspace(N, C, 2) * sizeof(float)));
  cuda::column_sums<2>({{dweight, dbias}}, LayerNormParamGrads{dout, inp, mean, rstd, C}, N, C,
                       workspace, stream_);
}

}  // namespace shardlm
