// KV-cached attention for inference, multi-head and grouped-query: the cache append and the
// attention of a few new queries against every cached position (see backend.h). One block per
// (query, head): the scores go to a backend workspace row, then softmax and the weighted sum of
// the value rows. A grouped-query cache holds the KV key/value heads; query head h reads cache
// head h / g.
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

// Where the heads of one qkv row sit, for the multi-head rows [3, NH, hd] (g = 1) and the
// grouped-query rows [KV, g+2, hd]: query head h = kv*g + i at q_base + kv*group + i*hd, key
// head kv at k_base + kv*group, value head kv at v_base + kv*group. The cache holds the KV
// key/value heads: [KV, max_seq, hd].
struct RowLayout {
  int KV, g, hd;
  int row, group, q_base, k_base, v_base;
};

RowLayout multi_head_rows(int NH, int hd) {
  const int C = NH * hd;
  return {NH, 1, hd, 3 * C, hd, 0, C, 2 * C};
}

RowLayout grouped_query_rows(int KV, int g, int hd) {
  return {KV, g, hd, KV * (g + 2) * hd, (g + 2) * hd, 0, g * hd, (g + 1) * hd};
}

// k_cache[kv, pos0+i, :] = key head kv of qkv row i; likewise v.
__global__ void kv_cache_append_kernel(float* k_cache, float* v_cache, const float* qkv, int pos0,
                                       int Tq, RowLayout L, int max_seq) {
  const size_t C = static_cast<size_t>(L.KV) * L.hd, total = static_cast<size_t>(Tq) * C;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t i = e / C, kv = (e % C) / L.hd, d = e % L.hd;
    const size_t dst = (kv * max_seq + pos0 + i) * L.hd + d;
    const float* row = qkv + i * L.row + kv * L.group + d;
    k_cache[dst] = row[L.k_base];
    v_cache[dst] = row[L.v_base];
  }
}

// Block (i, h): out[i, h] = softmax_j(scale * q . k_j for j <= pos0 + i) @ v_j over cache head
// h / g. scores: [Tq * H, max_seq] workspace.
__global__ void attention_decode_kernel(float* out, const float* qkv, const float* k_cache,
                                        const float* v_cache, float* scores, int pos0, RowLayout L,
                                        int max_seq, float scale) {
  const int H = L.KV * L.g, hd = L.hd;
  const int i = blockIdx.x / H, h = blockIdx.x % H, kv = h / L.g;
  const int n = pos0 + i + 1;
  const size_t head = static_cast<size_t>(kv) * max_seq * hd;
  const float* q = qkv + static_cast<size_t>(i) * L.row + L.q_base +
                   static_cast<size_t>(kv) * L.group + static_cast<size_t>(h % L.g) * hd;
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
    out[static_cast<size_t>(i) * H * hd + static_cast<size_t>(h) * hd + d] = acc;
  }
}

// The decode kernel over Tq queries of every head; scores holds Tq * H * max_seq floats.
void launch_decode(cudaStream_t stream, float* out, const float* qkv, const float* k_cache,
                   const float* v_cache, float* scores, int pos0, int Tq, const RowLayout& L,
                   int max_seq) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(L.hd));
  attention_decode_kernel<<<static_cast<unsigned>(Tq) * L.KV * L.g, kThreads, 0, stream>>>(
      out, qkv, k_cache, v_cache, scores, pos0, L, max_seq, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int pos0,
                                  int Tq, int NH, int hd, int max_seq) {
  check_positions("kv_cache_append", pos0, Tq, max_seq);
  const size_t total = static_cast<size_t>(Tq) * NH * hd;
  if (total == 0) return;
  kv_cache_append_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(
      k_cache, v_cache, qkv, pos0, Tq, multi_head_rows(NH, hd), max_seq);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::attention_decode(float* out, const float* qkv, const float* k_cache,
                                   const float* v_cache, int pos0, int Tq, int NH, int hd,
                                   int max_seq) {
  check_positions("attention_decode", pos0, Tq, max_seq);
  const size_t pairs = static_cast<size_t>(Tq) * NH;
  if (pairs == 0) return;
  auto* scores =
      static_cast<float*>(scratch(Scratch::DecodeScores, pairs * max_seq * sizeof(float)));
  launch_decode(stream_, out, qkv, k_cache, v_cache, scores, pos0, Tq, multi_head_rows(NH, hd),
                max_seq);
}

void CudaBackend::kv_cache_append_gqa(float* k_cache, float* v_cache, const float* qkv, int pos0,
                                      int Tq, int KV, int g, int hd, int max_seq) {
  check_positions("kv_cache_append_gqa", pos0, Tq, max_seq);
  const size_t total = static_cast<size_t>(Tq) * KV * hd;
  if (total == 0) return;
  kv_cache_append_kernel<<<grid_for(total, kThreads), kThreads, 0, stream_>>>(
      k_cache, v_cache, qkv, pos0, Tq, grouped_query_rows(KV, g, hd), max_seq);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::attention_decode_gqa(float* out, const float* qkv, const float* k_cache,
                                       const float* v_cache, int pos0, int Tq, int KV, int g,
                                       int hd, int max_seq) {
  check_positions("attention_decode_gqa", pos0, Tq, max_seq);
  const size_t pairs = static_cast<size_t>(Tq) * KV * g;
  if (pairs == 0) return;
  auto* scores =
      static_cast<float*>(scratch(Scratch::DecodeScores, pairs * max_seq * sizeof(float)));
  launch_decode(stream_, out, qkv, k_cache, v_cache, scores, pos0, Tq,
                grouped_query_rows(KV, g, hd), max_seq);
}

}  // namespace shardlm
