// RMSNorm over the channels of each row: out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2)
// + eps). One warp per row, as layernorm.cu; the weight gradient is a fixed-order column sum
// (cuda_common.cuh).
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::ceil_div;
using cuda::kWarp;
using cuda::warp_sum;

constexpr int kRowsPerBlock = 8;  // one warp each

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* inp,
                                       const float* weight, int N, int C, float eps) {
  const int n = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;
  const float* x = inp + static_cast<size_t>(n) * C;
  float* y = out + static_cast<size_t>(n) * C;
  float sq = 0.0f;
  for (int c = lane; c < C; c += kWarp) sq += x[c] * x[c];
  const float s = 1.0f / sqrtf(warp_sum(sq) / C + eps);
  for (int c = lane; c < C; c += kWarp) y[c] = x[c] * s * weight[c];
  if (lane == 0) rstd[n] = s;
}

// dinp[n, :] += s * (dnorm - norm * mean(dnorm * norm)), norm = x * s, dnorm = dout * weight.
__global__ void rmsnorm_backward_input_kernel(float* dinp, const float* dout, const float* inp,
                                              const float* weight, const float* rstd, int N,
                                              int C) {
  const int n = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;
  const float* x = inp + static_cast<size_t>(n) * C;
  const float* dy = dout + static_cast<size_t>(n) * C;
  float* dx = dinp + static_cast<size_t>(n) * C;
  const float s = rstd[n];
  float dnorm_norm_sum = 0.0f;
  for (int c = lane; c < C; c += kWarp) dnorm_norm_sum += dy[c] * weight[c] * x[c] * s;
  const float dnorm_norm_mean = warp_sum(dnorm_norm_sum) / C;
  for (int c = lane; c < C; c += kWarp)
    dx[c] += (dy[c] * weight[c] - x[c] * s * dnorm_norm_mean) * s;
}

// dout * norm at (n, c): the summand of dweight.
struct RmsNormWeightGrad {
  const float* dout;
  const float* inp;
  const float* rstd;
  int C;
  __device__ cuda::ColumnValues<1> operator()(int n, int c) const {
    const size_t i = static_cast<size_t>(n) * C + c;
    return {{dout[i] * inp[i] * rstd[n]}};
  }
};

}  // namespace

void CudaBackend::rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                                  int N, int C, float eps) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<ceil_div(N, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream_>>>(
      out, rstd, inp, weight, N, C, eps);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                   const float* weight, const float* rstd, int N, int C) {
  if (N == 0) return;
  rmsnorm_backward_input_kernel<<<ceil_div(N, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream_>>>(
      dinp, dout, inp, weight, rstd, N, C);
  CUDA_CHECK_LAUNCH();
  auto* workspace = static_cast<float*>(
      scratch(Scratch::ColumnPartials, cuda::column_sums_workspace(N, C, 1) * sizeof(float)));
  cuda::column_sums<1>({{dweight}}, RmsNormWeightGrad{dout, inp, rstd, C}, N, C, workspace,
                       stream_);
}

}  // namespace shardlm
