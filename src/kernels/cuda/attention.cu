// Causal multi-head self-attention, scale 1/sqrt(hd), as cuBLAS strided-batched GEMMs over
// the heads of one sequence plus row-wise softmax kernels.
//
// The heads of a sequence sit hd floats apart inside each qkv row (row stride 3C), so one
// strided-batched call covers all NH heads of a sequence without permuting qkv; the B
// sequences are separate calls. The score products are computed over the whole T x T square
// and the softmax zeroes the masked upper triangle: twice the minimum work in those GEMMs, but
// they are a small part of a step next to the linear layers, and every product stays one
// library call. As in matmul.cu, each GEMM is written for the column-major transpose of its
// row-major result.
#include <cmath>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::ceil_div;
using cuda::kWarp;
using cuda::warp_max;
using cuda::warp_sum;

constexpr int kRowsPerBlock = 8;  // one warp per score row

// In place on [rows, T] score rows (row r is query i = r % T): p[j] = softmax(s[0..i])[j]
// for j <= i, 0 for the masked j > i.
__global__ void causal_softmax_kernel(float* att, int rows, int T) {
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  float* row = att + static_cast<size_t>(r) * T;
  const int n = r % T + 1;
  float max_score = -INFINITY;
  for (int j = lane; j < n; j += kWarp) max_score = fmaxf(max_score, row[j]);
  max_score = warp_max(max_score);
  float sum = 0.0f;
  for (int j = lane; j < n; j += kWarp) sum += expf(row[j] - max_score);
  const float inv_sum = 1.0f / warp_sum(sum);
  for (int j = lane; j < T; j += kWarp) row[j] = j < n ? expf(row[j] - max_score) * inv_sum : 0.0f;
}

// In place on dP rows: dS[j] = P[j] * (dP[j] - sum_k P[k] dP[k]) for j <= i, 0 after.
__global__ void causal_softmax_backward_kernel(float* ds, const float* att, int rows, int T) {
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  float* dsrow = ds + static_cast<size_t>(r) * T;
  const float* prow = att + static_cast<size_t>(r) * T;
  const int n = r % T + 1;
  float dot = 0.0f;
  for (int j = lane; j < n; j += kWarp) dot += prow[j] * dsrow[j];
  dot = warp_sum(dot);
  for (int j = lane; j < T; j += kWarp) dsrow[j] = j < n ? prow[j] * (dsrow[j] - dot) : 0.0f;
}

}  // namespace

void CudaBackend::attention_forward(float* out, float* att, const float* qkv, int B, int T, int NH,
                                    int hd) {
  if (B == 0 || T == 0 || NH == 0) return;
  const int C = NH * hd, ld_qkv = 3 * C;
  const long long TT = static_cast<long long>(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd)), one = 1.0f, zero = 0.0f;
  for (int b = 0; b < B; ++b) {
    const float* q = qkv + static_cast<size_t>(b) * T * ld_qkv;
    const float* k = q + C;
    float* scores = att + static_cast<size_t>(b) * NH * TT;
    // S[i,j] = scale * q_i . k_j   <=>   S^T = scale * K Q^T (K, Q as column-major [hd, T])
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &scale, k,
                                           ld_qkv, hd, q, ld_qkv, hd, &zero, scores, T, TT, NH));
  }
  const int rows = B * NH * T;
  causal_softmax_kernel<<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream_>>>(
      att, rows, T);
  CUDA_CHECK_LAUNCH();
  for (int b = 0; b < B; ++b) {
    const float* v = qkv + static_cast<size_t>(b) * T * ld_qkv + 2 * C;
    const float* p = att + static_cast<size_t>(b) * NH * TT;
    // out[i,:] = sum_j P[i,j] v_j   <=>   out^T = V P^T
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, v,
                                           ld_qkv, hd, p, T, TT, &zero,
                                           out + static_cast<size_t>(b) * T * C, C, hd, NH));
  }
}

void CudaBackend::attention_backward(float* dqkv, float* scratch, const float* dout,
                                     const float* qkv, const float* att, int B, int T, int NH,
                                     int hd) {
  if (B == 0 || T == 0 || NH == 0) return;
  const int C = NH * hd, ld_qkv = 3 * C;
  const long long TT = static_cast<long long>(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd)), one = 1.0f, zero = 0.0f;
  for (int b = 0; b < B; ++b) {
    const size_t qkv_offset = static_cast<size_t>(b) * T * ld_qkv;
    const float* v = qkv + qkv_offset + 2 * C;
    const float* dy = dout + static_cast<size_t>(b) * T * C;
    const float* p = att + static_cast<size_t>(b) * NH * TT;
    float* dp = scratch + static_cast<size_t>(b) * NH * TT;
    float* dv = dqkv + qkv_offset + 2 * C;
    // dv_j = sum_i P[i,j] dy_i   <=>   dV^T = dY^T P (column-major: dY [hd,T], P^T [T,T])
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &one, dy, C,
                                           hd, p, T, TT, &zero, dv, ld_qkv, hd, NH));
    // dP[i,j] = dy_i . v_j   <=>   dP^T = V dY^T
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &one, v,
                                           ld_qkv, hd, dy, C, hd, &zero, dp, T, TT, NH));
  }
  const int rows = B * NH * T;
  causal_softmax_backward_kernel<<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0,
                                   stream_>>>(scratch, att, rows, T);
  CUDA_CHECK_LAUNCH();
  for (int b = 0; b < B; ++b) {
    const size_t qkv_offset = static_cast<size_t>(b) * T * ld_qkv;
    const float* q = qkv + qkv_offset;
    const float* k = q + C;
    const float* ds = scratch + static_cast<size_t>(b) * NH * TT;
    float* dq = dqkv + qkv_offset;
    float* dk = dq + C;
    // dq_i = scale * sum_j dS[i,j] k_j   <=>   dQ^T = scale * K dS^T
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &scale, k,
                                           ld_qkv, hd, ds, T, TT, &zero, dq, ld_qkv, hd, NH));
    // dk_j = scale * sum_i dS[i,j] q_i   <=>   dK^T = scale * Q dS
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &scale, q,
                                           ld_qkv, hd, ds, T, TT, &zero, dk, ld_qkv, hd, NH));
  }
}

}  // namespace shardlm
