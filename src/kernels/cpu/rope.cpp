// Rotary position embedding (Hugging Face's rotate-half convention) on the query and key heads
// of qkv rows [KV, g+2, hd], in place; value heads are untouched. The backward applies the
// transpose rotation (angle -theta) to d(qkv), which is the forward with sin negated.
#include <string>

#include "core/error.h"
#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"

namespace shardlm {

namespace {

// Below this many rotated pairs the parallel region costs more than it saves.
constexpr long kParallelPairs = 1 << 14;

void check_rope(const char* op, int pos0, int KV, int g, int hd) {
  if (hd < 2 || hd % 2 != 0)
    fail(std::string(op) + ": the head size must be even, got hd " + std::to_string(hd));
  if (KV < 1 || g < 1)
    fail(std::string(op) + ": needs KV >= 1 and g >= 1, got KV " + std::to_string(KV) + ", g " +
         std::to_string(g));
  if (pos0 < 0) fail(std::string(op) + ": negative start position " + std::to_string(pos0));
}

// x[i], x[i+half] <- (x[i] c - x[i+half] s, x[i+half] c + x[i] s) on the g query heads and the
// key head of every group of every row; sign = -1 rotates by -theta (the backward).
void rotate(float* qkv, const float* cos, const float* sin, int B, int T, int pos0, int KV, int g,
            int hd, float sign) {
  const int half = hd / 2;
  const size_t row = static_cast<size_t>(KV) * (g + 2) * hd;
  const long pairs = static_cast<long>(B) * T * KV * (g + 1) * half;
#pragma omp parallel for collapse(2) schedule(static) if (pairs >= kParallelPairs)
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const float* c = cos + static_cast<size_t>(pos0 + t) * half;
      const float* s = sin + static_cast<size_t>(pos0 + t) * half;
      float* x_row = qkv + (static_cast<size_t>(b) * T + t) * row;
      for (int kv = 0; kv < KV; ++kv)
        for (int head = 0; head <= g; ++head) {  // g query heads, then the key head
          float* x = x_row + (static_cast<size_t>(kv) * (g + 2) + head) * hd;
#pragma omp simd
          for (int i = 0; i < half; ++i) {
            const float x1 = x[i], x2 = x[i + half], si = sign * s[i];
            x[i] = x1 * c[i] - x2 * si;
            x[i + half] = x2 * c[i] + x1 * si;
          }
        }
    }
}

}  // namespace

void CpuBackend::rope_forward(float* qkv, const float* cos, const float* sin, int B, int T,
                              int pos0, int KV, int g, int hd) {
  const trace::Span span("rope_forward", trace::Kind::Kernel, 0, -1, "rope");
  check_rope("rope_forward", pos0, KV, g, hd);
  rotate(qkv, cos, sin, B, T, pos0, KV, g, hd, 1.0f);
}

void CpuBackend::rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T,
                               int pos0, int KV, int g, int hd) {
  const trace::Span span("rope_backward", trace::Kind::Kernel, 0, -1, "rope");
  check_rope("rope_backward", pos0, KV, g, hd);
  rotate(dqkv, cos, sin, B, T, pos0, KV, g, hd, -1.0f);
}

}  // namespace shardlm
