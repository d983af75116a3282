// Causal multi-head self-attention, scale 1/sqrt(hd), over qkv rows [3, NH, hd].
//
// One OpenMP region over the B*NH (batch, head) pairs; each thread runs one head at a time
// through flash_attention.h's tiled kernels, with its own workspace (multi-head attention is
// the grouped-query case g = 1: one query head per key/value head).
#include <omp.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/flash_attention.h"

namespace shardlm {

void CpuBackend::attention_forward(float* out, float* lse, const float* qkv, int B, int T, int NH,
                                   int hd) {
  const trace::Span span("attention_forward", trace::Kind::Kernel, 0, -1, "attention");
  if (B == 0 || T == 0 || NH == 0) return;
  const size_t C = static_cast<size_t>(NH) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto workspaces = cpu::make_flash_workspaces(T, hd, 1);
#pragma omp parallel
  {
    cpu::FlashWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * NH; ++bh) {
      const int b = bh / NH, h = bh % NH;
      const float* q = qkv + static_cast<size_t>(b) * T * 3 * C + static_cast<size_t>(h) * hd;
      cpu::flash_forward_head(w, q, q + C, q + 2 * C, 3 * C, scale,
                              out + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * hd, C,
                              lse + static_cast<size_t>(bh) * T);
    }
  }
}

void CpuBackend::attention_backward(float* dqkv, const float* dout, const float* qkv,
                                    const float* out, const float* lse, int B, int T, int NH,
                                    int hd) {
  const trace::Span span("attention_backward", trace::Kind::Kernel, 0, -1, "attention");
  if (B == 0 || T == 0 || NH == 0) return;
  const size_t C = static_cast<size_t>(NH) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto workspaces = cpu::make_flash_workspaces(T, hd, 1);
#pragma omp parallel
  {
    cpu::FlashWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * NH; ++bh) {
      const int b = bh / NH, h = bh % NH;
      const size_t qkv_offset = static_cast<size_t>(b) * T * 3 * C + static_cast<size_t>(h) * hd;
      const size_t out_offset = static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * hd;
      const float* q = qkv + qkv_offset;
      float* dq = dqkv + qkv_offset;
      const cpu::FlashGroup group{q,
                                  q + C,
                                  q + 2 * C,
                                  3 * C,
                                  0,
                                  out + out_offset,
                                  dout + out_offset,
                                  C,
                                  0,
                                  lse + static_cast<size_t>(bh) * T,
                                  dq,
                                  dq + C,
                                  dq + 2 * C};
      cpu::flash_backward_group(w, group, scale);
    }
  }
}

}  // namespace shardlm
