// Token (vocab-parallel) and position embeddings.
#include <omp.h>

#include <cstring>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_range.h"

namespace shardlm {

void CpuBackend::token_embedding_forward(float* out, const int32_t* tokens, const float* wte, int N,
                                         int C, int vocab_start, int Vl) {
  const trace::Span span("token_embedding_forward", trace::Kind::Kernel, 0, -1, "embedding");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* out_row = out + static_cast<size_t>(n) * C;
    const int64_t local = static_cast<int64_t>(tokens[n]) - vocab_start;
    if (local >= 0 && local < Vl) {
      std::memcpy(out_row, wte + local * C, sizeof(float) * C);
    } else {
      std::memset(out_row, 0, sizeof(float) * C);  // another TP rank owns this token
    }
  }
}

void CpuBackend::token_embedding_backward(float* dwte, const float* dout, const int32_t* tokens,
                                          int N, int C, int vocab_start, int Vl) {
  const trace::Span span("token_embedding_backward", trace::Kind::Kernel, 0, -1, "embedding");
  // Tokens repeat, so rows of dwte collide: split the channels between threads instead of the
  // tokens. Each thread walks all tokens in order, so the result is deterministic.
#pragma omp parallel
  {
    const cpu::IndexRange cols =
        cpu::split_range(C, omp_get_thread_num(), omp_get_num_threads(), 16);
    for (int n = 0; n < N; ++n) {
      const int64_t local = static_cast<int64_t>(tokens[n]) - vocab_start;
      if (local < 0 || local >= Vl) continue;
      float* dst = dwte + local * C;
      const float* src = dout + static_cast<size_t>(n) * C;
#pragma omp simd
      for (size_t c = cols.begin; c < cols.end; ++c) dst[c] += src[c];
    }
  }
}

void CpuBackend::position_embedding_forward(float* out, const float* wpe, int B, int T, int C) {
  const trace::Span span("position_embedding_forward", trace::Kind::Kernel, 0, -1, "embedding");
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      float* out_row = out + (static_cast<size_t>(b) * T + t) * C;
      const float* pos_row = wpe + static_cast<size_t>(t) * C;
#pragma omp simd
      for (int c = 0; c < C; ++c) out_row[c] += pos_row[c];
    }
  }
}

void CpuBackend::position_embedding_backward(float* dwpe, const float* dout, int B, int T, int C) {
  const trace::Span span("position_embedding_backward", trace::Kind::Kernel, 0, -1, "embedding");
  // Positions are disjoint rows of dwpe: split over t, sum the batch in order.
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    float* dst = dwpe + static_cast<size_t>(t) * C;
    for (int b = 0; b < B; ++b) {
      const float* src = dout + (static_cast<size_t>(b) * T + t) * C;
#pragma omp simd
      for (int c = 0; c < C; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace shardlm
