// KV-cached attention for inference: the cache append and the attention of a few new queries
// against every cached position (see backend.h). One block per (query, head): the scores go
// to a backend workspace row, then softmax and the weighted sum of the value rows.
#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::block_reduce;
using cuda::grid_for;
using cuda::kWarp;
using cuda::warp_sum;

constexpr int kThreads = 256;

void check_positions(const char* op, int pos0, int Tq, int max_seq) {
  if (pos0 < 0 || Tq < 0 || pos0 + Tq > max_seq)
    fail(std::string(op) + ": positions [" + std::to_string(pos0) + ", " +
         std::to_string(pos0 + Tq) + ") do not fit a cache of " + std::to_string(max_seq) +
         " positions");
}

// k_cache[h, pos0+i, :] = k part of qkv row i; likewise v.
__global__ void kv_cache_append_kernel(float* k_cache, float* v_cache, const float* qkv, int pos0,
                                       int Tq, int NH, int hd, int max_seq) {
  const size_t C = static_cast<size_t>(NH) * hd, total = static_cast<size_t>(Tq) * C;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t i = e / C, h = (e % C) / hd, d = e % hd;
    const size_t dst = (h * max_seq + pos0 + i) * hd + d;
    const float* row = qkv + i * 3 * C;
    k_cache[dst] = row[C + h * hd + d];
    v_cache[dst] = row[2 * C + h * hd + d];
  }
}

// Block (i, h): out[i, h] = softmax_j(scale * q . k_j for j <= pos0 + i) @ v_j.
// scores: [Tq * NH, max_seq] workspace.
__global__ void attention_decode_kernel(float* out, const float* qkv, const float* k_cache,
                                        const float* v_cache, float* scores, int pos0, int NH,
                                        int hd, int max_seq, float scale) {
  const int i = blockIdx.x / NH, h = blockIdx.x % NH;
  const int n = pos0 + i + 1;
  const size_t C = static_cast<size_t>(NH) * hd, head = static_cast<size_t>(h) * max_seq * hd;
  const float* q = qkv + i * 3 * C + static_cast<size_t>(h) * hd;
  const float* k = k_cache + head;
  const float* v = v_cache + head;
  float* s = scores + static_cast<size_t>(blockIdx.x) * max_seq;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  // One warp per key: lanes split the head dimension.
  for (int j = warp; j < n; j += warps) {
    float dot = 0.0f;
    for (int d = lane; d < hd; d += kWarp) dot += q[d] * k[static_cast<size_t>(j) * hd + d];
    dot = warp_sum(dot);
    if (lane == 0) s[j] = dot;
  }
  __syncthreads();
  float max_score = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) max_score = fmaxf(max_score, s[j]);
  max_score = block_reduce<true>(max_score);
  // exp(scale*s - scale*max), as the CPU kernels (and so the training forward) compute it.
  const float scaled_max = scale * max_score;
  float sum = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const float e = expf(s[j] * scale - scaled_max);
    s[j] = e;
    sum += e;
  }
  const float inv_sum = 1.0f / block_reduce<false>(sum);  // its barriers also publish s[]
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) acc += s[j] * inv_sum * v[static_cast<size_t>(j) * hd + d];
    out[i * C + static_cast<size_t>(h) * hd + d] = acc;
  }
}

}  // namespace

void CudaBackend::kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int pos0,
                                  int Tq, int NH, int hd, int max_seq) {
  check_positions("kv_cache_append", pos0, Tq, max_seq);
  const size_t total = static_cast<size_t>(Tq) * NH * hd;
  if (total == 0) return;
  kv_cache_append_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(
      k_cache, v_cache, qkv, pos0, Tq, NH, hd, max_seq);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::attention_decode(float* out, const float* qkv, const float* k_cache,
                                   const float* v_cache, int pos0, int Tq, int NH, int hd,
                                   int max_seq) {
  check_positions("attention_decode", pos0, Tq, max_seq);
  if (Tq == 0 || NH == 0) return;
  const size_t pairs = static_cast<size_t>(Tq) * NH;
  auto* scores =
      static_cast<float*>(scratch(Scratch::DecodeScores, pairs * max_seq * sizeof(float)));
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  attention_decode_kernel<<<static_cast<unsigned>(pairs), kThreads, 0, stream_>>>(
      out, qkv, k_cache, v_cache, scores, pos0, NH, hd, max_seq, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm
