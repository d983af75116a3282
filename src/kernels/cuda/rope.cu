// Rotary position embedding (Hugging Face's rotate-half) on the query and key heads of qkv rows
// [KV, g+2, hd], in place; value heads untouched. One thread per rotated pair; the backward is
// the rotation by -theta (sin negated).
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace shardlm {

namespace {

using cuda::grid_for;

constexpr int kThreads = 256;

void check_rope(const char* op, int pos0, int KV, int g, int hd) {
  if (hd < 2 || hd % 2 != 0)
    fail(std::string(op) + ": the head size must be even, got hd " + std::to_string(hd));
  if (KV < 1 || g < 1)
    fail(std::string(op) + ": needs KV >= 1 and g >= 1, got KV " + std::to_string(KV) + ", g " +
         std::to_string(g));
  if (pos0 < 0) fail(std::string(op) + ": negative start position " + std::to_string(pos0));
}

// Pair e = ((row * KV + kv) * (g+1) + head) * half + i, row = b*T + t, head < g+1 (g query
// heads, then the key head).
__global__ void rope_kernel(float* qkv, const float* cos, const float* sin, int T, int pos0, int KV,
                            int g, int half, size_t total, float sign) {
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(e % half);
    const size_t head_index = e / half;  // over rows, groups and rotated heads
    const int head = static_cast<int>(head_index % (g + 1));
    const size_t group_index = head_index / (g + 1);  // row * KV + kv
    const size_t row = group_index / KV;
    const int t = static_cast<int>(row % T);
    float* x = qkv + (group_index * (g + 2) + head) * 2 * half;
    const size_t at = static_cast<size_t>(pos0 + t) * half + i;
    const float c = cos[at], s = sign * sin[at];
    const float x1 = x[i], x2 = x[i + half];
    x[i] = x1 * c - x2 * s;
    x[i + half] = x2 * c + x1 * s;
  }
}

void rope(cudaStream_t stream, float* qkv, const float* cos, const float* sin, int B, int T,
          int pos0, int KV, int g, int hd, float sign) {
  const size_t total = static_cast<size_t>(B) * T * KV * (g + 1) * (hd / 2);
  if (total == 0) return;
  rope_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(qkv, cos, sin, T, pos0, KV, g,
                                                                  hd / 2, total, sign);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::rope_forward(float* qkv, const float* cos, const float* sin, int B, int T,
                               int pos0, int KV, int g, int hd) {
  check_rope("rope_forward", pos0, KV, g, hd);
  rope(stream_, qkv, cos, sin, B, T, pos0, KV, g, hd, 1.0f);
}

void CudaBackend::rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T,
                                int pos0, int KV, int g, int hd) {
  check_rope("rope_backward", pos0, KV, g, hd);
  rope(stream_, dqkv, cos, sin, B, T, pos0, KV, g, hd, -1.0f);
}

}  // namespace shardlm
