// Vocab-parallel softmax cross-entropy (steps in backend.h). A rank's logits cover vocabulary
// columns [vocab_start, vocab_start + Vl); only the first `valid` of them are real tokens (the
// rest pad the vocabulary) and never get probability or gradient. One block per row for the
// row reductions; the backward is elementwise.
#include <algorithm>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::block_reduce;
using cuda::ceil_div;
using cuda::grid_for;

constexpr int kThreads = 256;
constexpr int kBackwardColumnsPerBlock = 1024;

// Number of this rank's columns that are real vocabulary entries.
int valid_columns(int Vl, int vocab_start, int vocab_size) {
  return std::clamp(vocab_size - vocab_start, 0, Vl);
}

// The column of target in this rank's logits, or -1 if another rank owns it.
__device__ int local_target(int32_t target, int vocab_start, int valid) {
  const long long local = static_cast<long long>(target) - vocab_start;
  return local >= 0 && local < valid ? static_cast<int>(local) : -1;
}

__global__ void row_max_kernel(float* row_max, const float* logits, int Vl, int valid) {
  const float* row = logits + static_cast<size_t>(blockIdx.x) * Vl;
  float m = -INFINITY;  // stays -inf for a rank with no valid column
  for (int j = threadIdx.x; j < valid; j += blockDim.x) m = fmaxf(m, row[j]);
  m = block_reduce<true>(m);
  if (threadIdx.x == 0) row_max[blockIdx.x] = m;
}

__global__ void partial_sums_kernel(float* sum_exp, float* target_logit, const float* logits,
                                    const float* row_max, const int32_t* targets, int Vl,
                                    int vocab_start, int valid) {
  const int n = blockIdx.x;
  const float* row = logits + static_cast<size_t>(n) * Vl;
  const float m = row_max[n];
  float sum = 0.0f;
  // A row_max of -inf means no valid column anywhere: leave the sum 0 rather than NaN.
  if (m != -INFINITY)
    for (int j = threadIdx.x; j < valid; j += blockDim.x) sum += expf(row[j] - m);
  sum = block_reduce<false>(sum);
  if (threadIdx.x == 0) {
    sum_exp[n] = sum;
    const int t = local_target(targets[n], vocab_start, valid);
    target_logit[n] = t >= 0 ? row[t] : 0.0f;
  }
}

__global__ void loss_kernel(float* losses, const float* row_max, const float* sum_exp,
                            const float* target_logit, int N) {
  for (int n = blockIdx.x * blockDim.x + threadIdx.x; n < N; n += gridDim.x * blockDim.x)
    losses[n] = logf(sum_exp[n]) + row_max[n] - target_logit[n];
}

// Block (n, chunk): columns [chunk * kBackwardColumnsPerBlock, ...) of row n. dlogits may alias
// logits: each element is read before it is written, by the same thread.
__global__ void backward_kernel(float* dlogits, const float* logits, const float* row_max,
                                const float* sum_exp, const int32_t* targets, float dloss, int Vl,
                                int vocab_start, int valid) {
  const int n = blockIdx.x;
  const size_t offset = static_cast<size_t>(n) * Vl;
  const float m = row_max[n];
  const float scale = dloss / sum_exp[n];
  const int t = local_target(targets[n], vocab_start, valid);
  const int end = min(Vl, static_cast<int>(blockIdx.y + 1) * kBackwardColumnsPerBlock);
  for (int j = blockIdx.y * kBackwardColumnsPerBlock + threadIdx.x; j < end; j += blockDim.x) {
    float d = 0.0f;  // padded columns get no gradient
    if (j < valid) {
      d = expf(logits[offset + j] - m) * scale;
      if (j == t) d -= dloss;
    }
    dlogits[offset + j] = d;
  }
}

}  // namespace

void CudaBackend::xent_row_max(float* row_max, const float* logits, int N, int Vl, int vocab_start,
                               int vocab_size) {
  if (N == 0) return;
  row_max_kernel<<<N, kThreads, 0, stream_>>>(row_max, logits, Vl,
                                              valid_columns(Vl, vocab_start, vocab_size));
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::xent_partial_sums(float* sum_exp, float* target_logit, const float* logits,
                                    const float* row_max, const int32_t* targets, int N, int Vl,
                                    int vocab_start, int vocab_size) {
  if (N == 0) return;
  partial_sums_kernel<<<N, kThreads, 0, stream_>>>(sum_exp, target_logit, logits, row_max, targets,
                                                   Vl, vocab_start,
                                                   valid_columns(Vl, vocab_start, vocab_size));
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::xent_loss(float* losses, const float* row_max, const float* sum_exp,
                            const float* target_logit, int N) {
  if (N == 0) return;
  loss_kernel<<<grid_for(N, kThreads), kThreads, 0, stream_>>>(losses, row_max, sum_exp,
                                                               target_logit, N);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::xent_backward(float* dlogits, const float* logits, const float* row_max,
                                const float* sum_exp, const int32_t* targets, float dloss, int N,
                                int Vl, int vocab_start, int vocab_size) {
  if (N == 0 || Vl == 0) return;
  const dim3 grid(N, ceil_div(Vl, kBackwardColumnsPerBlock));
  backward_kernel<<<grid, kThreads, 0, stream_>>>(dlogits, logits, row_max, sum_exp, targets, dloss,
                                                  Vl, vocab_start,
                                                  valid_columns(Vl, vocab_start, vocab_size));
  CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm
