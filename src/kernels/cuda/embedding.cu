// Token (vocab-parallel) and position embeddings.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::ceil_div;
using cuda::grid_for;

__global__ void token_embedding_forward_kernel(float* out, const int32_t* tokens, const float* wte,
                                               int N, int C, int vocab_start, int Vl) {
  const size_t total = static_cast<size_t>(N) * C;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t n = i / C, c = i % C;
    const int64_t local = static_cast<int64_t>(tokens[n]) - vocab_start;
    // 0 for a token another TP rank owns: the all-reduce fills it in.
    out[i] = local >= 0 && local < Vl ? wte[local * C + c] : 0.0f;
  }
}

// One block column per run of equal tokens: segment s covers order[seg_begin[s]..seg_begin[s+1])
// (positions in increasing order) of local vocabulary row seg_row[s]. Each thread owns one
// channel and adds the positions one after another, the CPU backend's order.
__global__ void token_embedding_backward_kernel(float* dwte, const float* dout,
                                                const int32_t* order, const int32_t* seg_begin,
                                                const int32_t* seg_row, int C) {
  const int s = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float* dst = dwte + static_cast<size_t>(seg_row[s]) * C + c;
  float acc = *dst;
  for (int k = seg_begin[s]; k < seg_begin[s + 1]; ++k)
    acc += dout[static_cast<size_t>(order[k]) * C + c];
  *dst = acc;
}

__global__ void position_embedding_forward_kernel(float* out, const float* wpe, int B, int T,
                                                  int C) {
  const size_t total = static_cast<size_t>(B) * T * C, TC = static_cast<size_t>(T) * C;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] += wpe[i % TC];
}

// dwpe[t, c] += dout[0, t, c] + dout[1, t, c] + ... in batch order, as the CPU backend.
__global__ void position_embedding_backward_kernel(float* dwpe, const float* dout, int B, int T,
                                                   int C) {
  const size_t TC = static_cast<size_t>(T) * C;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < TC;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float acc = dwpe[i];
    for (int b = 0; b < B; ++b) acc += dout[b * TC + i];
    dwpe[i] = acc;
  }
}

constexpr int kThreads = 256;

}  // namespace

void CudaBackend::token_embedding_forward(float* out, const int32_t* tokens, const float* wte,
                                          int N, int C, int vocab_start, int Vl) {
  const size_t total = static_cast<size_t>(N) * C;
  if (total == 0) return;
  token_embedding_forward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(
      out, tokens, wte, N, C, vocab_start, Vl);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::token_embedding_backward(float* dwte, const float* dout, const int32_t* tokens,
                                           int N, int C, int vocab_start, int Vl) {
  if (N == 0 || C == 0) return;
  // Tokens repeat, so rows of dwte collide. Group the positions by vocabulary row on the host
  // (a stable sort keeps each row's positions in order) so that every row is one thread's
  // sequential sum per channel: deterministic, and the same additions as the CPU backend.
  std::vector<int32_t> host_tokens(static_cast<size_t>(N));
  copy_to_host(host_tokens.data(), tokens, host_tokens.size() * sizeof(int32_t));
  std::vector<int32_t> order;
  order.reserve(host_tokens.size());
  for (int n = 0; n < N; ++n) {
    const int64_t local = static_cast<int64_t>(host_tokens[n]) - vocab_start;
    if (local >= 0 && local < Vl) order.push_back(n);
  }
  if (order.empty()) return;  // another TP rank owns every token
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return host_tokens[a] < host_tokens[b]; });
  // indices = [order (M) | seg_begin (S+1) | seg_row (S)]
  std::vector<int32_t> indices(order);
  std::vector<int32_t> seg_row;
  for (size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || host_tokens[order[k]] != host_tokens[order[k - 1]]) {
      indices.push_back(static_cast<int32_t>(k));
      seg_row.push_back(host_tokens[order[k]] - vocab_start);
    }
  }
  const size_t M = order.size(), S = seg_row.size();
  indices.push_back(static_cast<int32_t>(M));
  indices.insert(indices.end(), seg_row.begin(), seg_row.end());
  auto* device_indices =
      static_cast<int32_t*>(scratch(Scratch::Indices, indices.size() * sizeof(int32_t)));
  copy_from_host(device_indices, indices.data(), indices.size() * sizeof(int32_t));
  token_embedding_backward_kernel<<<dim3(static_cast<unsigned>(S), ceil_div(C, kThreads)), kThreads,
                                    0, stream_>>>(dwte, dout, device_indices, device_indices + M,
                                                  device_indices + M + S + 1, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::position_embedding_forward(float* out, const float* wpe, int B, int T, int C) {
  const size_t total = static_cast<size_t>(B) * T * C;
  if (total == 0) return;
  position_embedding_forward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(out, wpe,
                                                                                         B, T, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::position_embedding_backward(float* dwpe, const float* dout, int B, int T, int C) {
  const size_t total = static_cast<size_t>(T) * C;
  if (total == 0) return;
  position_embedding_backward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(
      dwpe, dout, B, T, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm
