// Device-side building blocks shared by the CUDA kernels: launch sizes, warp and block
// reductions, and the fixed-order column sums behind the bias and LayerNorm weight gradients.
// Everything here is a template or inline (each .cu file instantiates what it uses).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"

namespace shardlm::cuda {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Blocks for a grid-stride loop over n elements: enough to fill any current GPU, few enough
// that each thread does several elements.
inline unsigned grid_for(size_t n, int threads, size_t max_blocks = 4096) {
  const size_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<size_t>(blocks, 1, max_blocks));
}

inline unsigned ceil_div(size_t a, size_t b) {
  return static_cast<unsigned>((a + b - 1) / b);
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(kFullMask, x, offset);
  return x;
}

__device__ __forceinline__ double warp_sum(double x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(kFullMask, x, offset);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    x = fmaxf(x, __shfl_xor_sync(kFullMask, x, offset));
  return x;
}

// Sum (Max = false) or max (Max = true) over the whole block, returned to every thread.
// blockDim.x must be a multiple of 32 and at most 1024; every thread must call it.
template <bool Max, typename T>
__device__ T block_reduce(T x) {
  __shared__ T warp_results[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  if constexpr (Max)
    x = warp_max(x);
  else
    x = warp_sum(x);
  __syncthreads();  // warp_results may still be read by a previous call
  if (lane == 0) warp_results[warp] = x;
  __syncthreads();
  T identity;
  if constexpr (Max)
    identity = -INFINITY;
  else
    identity = T(0);
  x = lane < warps ? warp_results[lane] : identity;
  if constexpr (Max)
    x = warp_max(x);
  else
    x = warp_sum(x);
  return x;
}

// ---- column sums over rows, in a fixed order --------------------------------------------------
// For an [N, C] field value(n, c) returning K sums per element, out_k[c] += sum_n value(n, c)_k.
// Pass 1: blocks of 32 columns x kColumnRowLanes row lanes each sum one chunk of
// kColumnChunkRows rows into partials[chunk][k][c]; pass 2 adds the chunks in order. No
// atomics, so the result depends only on (N, C), not on scheduling.
constexpr int kColumnRowLanes = 8;
constexpr int kColumnChunkRows = 256;

template <int K>
struct ColumnValues {
  float v[K];
};

template <int K, typename ValueFn>
__global__ void column_partial_sums_kernel(float* partials /*[chunks,K,C]*/, ValueFn value, int N,
                                           int C) {
  __shared__ float lanes[K][kColumnRowLanes][kWarp];
  const int c = blockIdx.x * kWarp + threadIdx.x;
  const int row_begin = blockIdx.y * kColumnChunkRows;
  const int row_end = min(N, row_begin + kColumnChunkRows);
  float acc[K] = {};
  if (c < C) {
    for (int n = row_begin + threadIdx.y; n < row_end; n += kColumnRowLanes) {
      const ColumnValues<K> x = value(n, c);
#pragma unroll
      for (int k = 0; k < K; ++k) acc[k] += x.v[k];
    }
  }
#pragma unroll
  for (int k = 0; k < K; ++k) lanes[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      float sum = 0.0f;
      for (int r = 0; r < kColumnRowLanes; ++r) sum += lanes[k][r][threadIdx.x];
      partials[(static_cast<size_t>(blockIdx.y) * K + k) * C + c] = sum;
    }
  }
}

template <int K>
struct ColumnOutputs {
  float* out[K];
};

template <int K>
__global__ void column_add_partials_kernel(ColumnOutputs<K> outputs, const float* partials,
                                           int chunks, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    // The chunks' sum first, then one add: the batch's gradient is formed, then accumulated.
    float sum = 0.0f;
    for (int chunk = 0; chunk < chunks; ++chunk)
      sum += partials[(static_cast<size_t>(chunk) * K + k) * C + c];
    outputs.out[k][c] += sum;
  }
}

// Floats of workspace column_sums needs.
inline size_t column_sums_workspace(int N, int C, int K) {
  return static_cast<size_t>(ceil_div(static_cast<size_t>(N), kColumnChunkRows)) * K * C;
}

// outputs.out[k][c] += sum_n value(n, c).v[k]; workspace holds column_sums_workspace floats.
template <int K, typename ValueFn>
void column_sums(ColumnOutputs<K> outputs, ValueFn value, int N, int C, float* workspace,
                 cudaStream_t stream) {
  if (C == 0) return;
  const unsigned chunks = std::max(1u, ceil_div(static_cast<size_t>(N), kColumnChunkRows));
  column_partial_sums_kernel<K>
      <<<dim3(ceil_div(C, kWarp), chunks), dim3(kWarp, kColumnRowLanes), 0, stream>>>(workspace,
                                                                                      value, N, C);
  CUDA_CHECK_LAUNCH();
  column_add_partials_kernel<K>
      <<<ceil_div(C, 256), 256, 0, stream>>>(outputs, workspace, static_cast<int>(chunks), C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
