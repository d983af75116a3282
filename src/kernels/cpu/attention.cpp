// Causal multi-head self-attention, scale 1/sqrt(hd), over qkv rows [3, NH, hd].
//
// One OpenMP region over the B*NH (batch, head) pairs; each thread runs one head at a time
// through attention_head.h's packed micro-kernels, with its own workspace.
#include <omp.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/attention_head.h"
#include "kernels/cpu/cpu_backend.h"

namespace shardlm {

void CpuBackend::attention_forward(float* out, float* att, const float* qkv, int B, int T, int NH,
                                   int hd) {
  const trace::Span span("attention_forward", trace::Kind::Kernel, 0, -1, "attention");
  const size_t C = static_cast<size_t>(NH) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::vector<std::unique_ptr<cpu::HeadWorkspace>> workspaces = cpu::make_workspaces(T, hd);
#pragma omp parallel
  {
    cpu::HeadWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * NH; ++bh) {
      const int b = bh / NH, h = bh % NH;
      const float* q = qkv + static_cast<size_t>(b) * T * 3 * C + static_cast<size_t>(h) * hd;
      cpu::head_attention_forward(
          w, q, q + C, q + 2 * C, 3 * C, scale, att + static_cast<size_t>(bh) * T * T,
          out + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * hd, C);
    }
  }
}

void CpuBackend::attention_backward(float* dqkv, float* scratch, const float* dout,
                                    const float* qkv, const float* att, int B, int T, int NH,
                                    int hd) {
  const trace::Span span("attention_backward", trace::Kind::Kernel, 0, -1, "attention");
  const size_t C = static_cast<size_t>(NH) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::vector<std::unique_ptr<cpu::HeadWorkspace>> workspaces = cpu::make_workspaces(T, hd);
#pragma omp parallel
  {
    cpu::HeadWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * NH; ++bh) {
      const int b = bh / NH, h = bh % NH;
      const size_t qkv_offset = static_cast<size_t>(b) * T * 3 * C + static_cast<size_t>(h) * hd;
      const float* q = qkv + qkv_offset;
      float* dq = dqkv + qkv_offset;
      const float* dy = dout + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * hd;
      const size_t tt = static_cast<size_t>(bh) * T * T;
      cpu::head_attention_backward(w, q, q + C, q + 2 * C, 3 * C, dy, C, att + tt, scale,
                                   scratch + tt, dq, dq + C, dq + 2 * C);
    }
  }
}

}  // namespace shardlm
