// Linear layers: out = inp @ weight^T + bias, with the weight stored [OC, C] (PyTorch's
// nn.Linear layout). The three products are cuBLAS fp32 GEMMs. cuBLAS is column-major: a
// row-major [R, K] matrix is the column-major [K, R] matrix, its transpose, so each product
// below is written for the transposed result (shapes in the comments are row-major).
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::grid_for;

// out[n, :] = bias, the starting value the GEMM accumulates onto (beta = 1), as on the CPU.
__global__ void broadcast_rows_kernel(float* out, const float* bias, int N, int OC) {
  const size_t total = static_cast<size_t>(N) * OC;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = bias[i % OC];
}

// dout[n, c]: the summand of dbias.
struct BiasGrad {
  const float* dout;
  int OC;
  __device__ cuda::ColumnValues<1> operator()(int n, int c) const {
    return {{dout[static_cast<size_t>(n) * OC + c]}};
  }
};

constexpr int kThreads = 256;

}  // namespace

void CudaBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                 const float* bias, int N, int C, int OC) {
  if (N == 0 || OC == 0) return;
  float beta = 0.0f;
  if (bias != nullptr) {
    broadcast_rows_kernel<<<grid_for(static_cast<size_t>(N) * OC, kThreads), kThreads, 0,
                            stream_>>>(out, bias, N, OC);
    CUDA_CHECK_LAUNCH();
    beta = 1.0f;
  }
  const float one = 1.0f;
  // out[N,OC] = inp[N,C] @ weight[OC,C]^T   <=>   out^T = weight @ inp^T (column-major)
  CUBLAS_CHECK(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, C, inp, C,
                           &beta, out, OC));
}

void CudaBackend::matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, int N, int C, int OC) {
  const float one = 1.0f, zero = 0.0f;
  // dinp[N,C] = dout[N,OC] @ weight[OC,C]   <=>   dinp^T = weight^T @ dout^T
  if (dinp != nullptr && N > 0 && C > 0)
    CUBLAS_CHECK(cublasSgemm(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight, C, dout, OC,
                             &zero, dinp, C));
  // dweight[OC,C] += dout[N,OC]^T @ inp[N,C]   <=>   dweight^T += inp^T @ dout
  if (OC > 0 && C > 0)
    CUBLAS_CHECK(cublasSgemm(cublas_, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout, OC,
                             &one, dweight, C));
  if (dbias != nullptr) {
    auto* workspace = static_cast<float*>(
        scratch(Scratch::ColumnPartials, cuda::column_sums_workspace(N, OC, 1) * sizeof(float)));
    cuda::column_sums<1>({{dbias}}, BiasGrad{dout, OC}, N, OC, workspace, stream_);
  }
}

}  // namespace shardlm
