// Causal self-attention, scale 1/sqrt(hd), multi-head (qkv rows [3, NH, hd]) and grouped-query
// (qkv rows [KV, g+2, hd], query head h = kv*g + i on key/value head kv), as cuBLAS
// strided-batched GEMMs over the heads of one sequence plus row-wise softmax kernels.
//
// Both layouts place a head's rows at a fixed offset inside each qkv row, and consecutive
// key/value groups a fixed stride apart, so one strided-batched call covers the KV groups'
// i-th query heads of a sequence without permuting qkv (multi-head attention is g = 1, the NH
// heads hd floats apart); the B sequences and the g query heads of a group are separate calls.
// The forward keeps only the softmax's log-sum-exp (lse [B,H,T]); the probabilities live in a
// backend-owned T x T workspace during a call, and the backward recomputes them from lse (one
// more score GEMM), so activation memory per layer does not grow with T^2 on this backend
// either; the workspace is one buffer for all layers.
// A key/value head's gradient sums over its g query heads by accumulating GEMMs (beta = 1
// after the first) in stream order: a fixed order, no atomics. The score products are computed over
// the whole T x T square and the softmax zeroes the masked upper triangle: twice the minimum work
// in those GEMMs, but they are a small part of a step next to the linear layers, and every product
// stays one library call. As in matmul.cu, each GEMM is written for the column-major transpose of
// its row-major result.
#include <cmath>
#include <string>

#include "core/error.h"

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
// for j <= i, 0 for the masked j > i; lse[r] = log sum_{j<=i} exp(s[j]).
__global__ void causal_softmax_kernel(float* att, float* lse, int rows, int T) {
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
  sum = warp_sum(sum);
  const float inv_sum = 1.0f / sum;
  for (int j = lane; j < T; j += kWarp) row[j] = j < n ? expf(row[j] - max_score) * inv_sum : 0.0f;
  if (lane == 0) lse[r] = max_score + logf(sum);
}

// In place on [rows, T] score rows: the forward's probabilities again from its lse,
// p[j] = exp(s[j] - lse[r]) for j <= i, 0 for the masked j > i.
__global__ void causal_probabilities_kernel(float* att, const float* lse, int rows, int T) {
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  float* row = att + static_cast<size_t>(r) * T;
  const int n = r % T + 1;
  const float l = lse[r];
  for (int j = lane; j < T; j += kWarp) row[j] = j < n ? expf(row[j] - l) : 0.0f;
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

// Where one sequence's heads sit in its qkv rows: query head i of group kv at
// q_base + kv*group + i*hd, its key at k_base + kv*group, its value at v_base + kv*group.
struct QkvLayout {
  int T, KV, g, hd;
  int row;    // qkv row stride
  int group;  // between consecutive key/value groups within a row
  int q_base, k_base, v_base;
  int heads() const { return KV * g; }
  int out_row() const { return KV * g * hd; }
};

QkvLayout multi_head_layout(int T, int NH, int hd) {
  const int C = NH * hd;
  return {T, NH, 1, hd, 3 * C, hd, 0, C, 2 * C};
}

QkvLayout grouped_query_layout(int T, int KV, int g, int hd) {
  return {T, KV, g, hd, KV * (g + 2) * hd, (g + 2) * hd, 0, g * hd, (g + 1) * hd};
}

// att [B,H,T,T] = scale * q k^T over the whole square (the softmax masks the upper triangle).
void attention_scores(cublasHandle_t cublas, float* att, const float* qkv, int B,
                      const QkvLayout& L) {
  const int T = L.T, hd = L.hd, H = L.heads();
  const long long TT = static_cast<long long>(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd)), zero = 0.0f;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < L.g; ++i) {
      const float* seq = qkv + static_cast<size_t>(b) * T * L.row;
      float* scores = att + (static_cast<size_t>(b) * H + i) * TT;
      // S[t,j] = scale * q_t . k_j   <=>   S^T = scale * K Q^T (K, Q as column-major [hd, T])
      CUBLAS_CHECK(cublasSgemmStridedBatched(
          cublas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &scale, seq + L.k_base, L.row, L.group,
          seq + L.q_base + i * hd, L.row, L.group, &zero, scores, T, L.g * TT, L.KV));
    }
}

// att is backend scratch [B,H,T,T] (the probabilities live only during the call).
void attention_forward_impl(cublasHandle_t cublas, cudaStream_t stream, float* out, float* lse,
                            float* att, const float* qkv, int B, const QkvLayout& L) {
  const int T = L.T, hd = L.hd, H = L.heads();
  const long long TT = static_cast<long long>(T) * T;
  const float one = 1.0f, zero = 0.0f;
  attention_scores(cublas, att, qkv, B, L);
  const int rows = B * H * T;
  causal_softmax_kernel<<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream>>>(
      att, lse, rows, T);
  CUDA_CHECK_LAUNCH();
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < L.g; ++i) {
      const float* seq = qkv + static_cast<size_t>(b) * T * L.row;
      const float* p = att + (static_cast<size_t>(b) * H + i) * TT;
      float* y = out + static_cast<size_t>(b) * T * L.out_row() + i * hd;
      // out[t,:] = sum_j P[t,j] v_j   <=>   out^T = V P^T
      CUBLAS_CHECK(cublasSgemmStridedBatched(
          cublas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, seq + L.v_base, L.row, L.group, p, T,
          L.g * TT, &zero, y, L.out_row(), static_cast<long long>(L.g) * hd, L.KV));
    }
}

// att and scratch are backend scratch [B,H,T,T] each: the probabilities recomputed from lse,
// then dP and dS.
void attention_backward_impl(cublasHandle_t cublas, cudaStream_t stream, float* dqkv, float* att,
                             float* scratch, const float* dout, const float* qkv, const float* lse,
                             int B, const QkvLayout& L) {
  const int T = L.T, hd = L.hd, H = L.heads();
  attention_scores(cublas, att, qkv, B, L);
  causal_probabilities_kernel<<<ceil_div(B * H * T, kRowsPerBlock), kRowsPerBlock * kWarp, 0,
                                stream>>>(att, lse, B * H * T, T);
  CUDA_CHECK_LAUNCH();
  const long long TT = static_cast<long long>(T) * T, gTT = L.g * TT;
  const long long dy_stride = static_cast<long long>(L.g) * hd;  // between groups in dout rows
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd)), one = 1.0f, zero = 0.0f;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < L.g; ++i) {
      const size_t seq_offset = static_cast<size_t>(b) * T * L.row;
      const float* seq = qkv + seq_offset;
      const float* dy = dout + static_cast<size_t>(b) * T * L.out_row() + i * hd;
      const size_t tt = (static_cast<size_t>(b) * H + i) * TT;
      const float* beta = i == 0 ? &zero : &one;  // the group's later heads add to dv
      // dv_j += sum_t P[t,j] dy_t   <=>   dV^T += dY^T P (column-major: dY [hd,T], P^T [T,T])
      CUBLAS_CHECK(cublasSgemmStridedBatched(cublas, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &one, dy,
                                             L.out_row(), dy_stride, att + tt, T, gTT, beta,
                                             dqkv + seq_offset + L.v_base, L.row, L.group, L.KV));
      // dP[t,j] = dy_t . v_j   <=>   dP^T = V dY^T
      CUBLAS_CHECK(cublasSgemmStridedBatched(cublas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &one,
                                             seq + L.v_base, L.row, L.group, dy, L.out_row(),
                                             dy_stride, &zero, scratch + tt, T, gTT, L.KV));
    }
  const int rows = B * H * T;
  causal_softmax_backward_kernel<<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0,
                                   stream>>>(scratch, att, rows, T);
  CUDA_CHECK_LAUNCH();
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < L.g; ++i) {
      const size_t seq_offset = static_cast<size_t>(b) * T * L.row;
      const float* seq = qkv + seq_offset;
      float* dseq = dqkv + seq_offset;
      const float* ds = scratch + (static_cast<size_t>(b) * H + i) * TT;
      const float* beta = i == 0 ? &zero : &one;  // the group's later heads add to dk
      // dq_t = scale * sum_j dS[t,j] k_j   <=>   dQ^T = scale * K dS^T
      CUBLAS_CHECK(cublasSgemmStridedBatched(cublas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &scale,
                                             seq + L.k_base, L.row, L.group, ds, T, gTT, &zero,
                                             dseq + L.q_base + i * hd, L.row, L.group, L.KV));
      // dk_j += scale * sum_t dS[t,j] q_t   <=>   dK^T += scale * Q dS
      CUBLAS_CHECK(cublasSgemmStridedBatched(cublas, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &scale,
                                             seq + L.q_base + i * hd, L.row, L.group, ds, T, gTT,
                                             beta, dseq + L.k_base, L.row, L.group, L.KV));
    }
}

void check_gqa_shape(const char* op, int KV, int g, int hd) {
  if (KV < 1 || g < 1 || hd < 1)
    fail(std::string(op) + ": needs KV >= 1, g >= 1 and hd >= 1, got KV " + std::to_string(KV) +
         ", g " + std::to_string(g) + ", hd " + std::to_string(hd));
}

}  // namespace

// The T x T buffers of one call (scores/probabilities and their gradient).
float* CudaBackend::attention_scratch(Scratch slot, int B, int T, int heads) {
  return static_cast<float*>(scratch(slot, static_cast<size_t>(B) * heads * T * T * sizeof(float)));
}

void CudaBackend::attention_forward(float* out, float* lse, const float* qkv, int B, int T, int NH,
                                    int hd) {
  if (B == 0 || T == 0 || NH == 0) return;
  attention_forward_impl(cublas_, stream_, out, lse,
                         attention_scratch(Scratch::AttentionProbs, B, T, NH), qkv, B,
                         multi_head_layout(T, NH, hd));
}

void CudaBackend::attention_backward(float* dqkv, const float* dout, const float* qkv,
                                     const float* out, const float* lse, int B, int T, int NH,
                                     int hd) {
  (void)out;  // the recomputed probabilities give dS without rowsum(dout * out)
  if (B == 0 || T == 0 || NH == 0) return;
  attention_backward_impl(cublas_, stream_, dqkv,
                          attention_scratch(Scratch::AttentionProbs, B, T, NH),
                          attention_scratch(Scratch::AttentionGrads, B, T, NH), dout, qkv, lse, B,
                          multi_head_layout(T, NH, hd));
}

void CudaBackend::attention_gqa_forward(float* out, float* lse, const float* qkv, int B, int T,
                                        int KV, int g, int hd) {
  check_gqa_shape("attention_gqa_forward", KV, g, hd);
  if (B == 0 || T == 0) return;
  attention_forward_impl(cublas_, stream_, out, lse,
                         attention_scratch(Scratch::AttentionProbs, B, T, KV * g), qkv, B,
                         grouped_query_layout(T, KV, g, hd));
}

void CudaBackend::attention_gqa_backward(float* dqkv, const float* dout, const float* qkv,
                                         const float* out, const float* lse, int B, int T, int KV,
                                         int g, int hd) {
  (void)out;
  check_gqa_shape("attention_gqa_backward", KV, g, hd);
  if (B == 0 || T == 0) return;
  attention_backward_impl(cublas_, stream_, dqkv,
                          attention_scratch(Scratch::AttentionProbs, B, T, KV * g),
                          attention_scratch(Scratch::AttentionGrads, B, T, KV * g), dout, qkv, lse,
                          B, grouped_query_layout(T, KV, g, hd));
}

}  // namespace shardlm
