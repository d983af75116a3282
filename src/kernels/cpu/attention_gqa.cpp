// Causal grouped-query attention, scale 1/sqrt(hd), over qkv rows [KV, g+2, hd] (see backend.h):
// query head h = kv*g + i attends with key/value head kv. The per-head work is
// flash_attention.h's, as for multi-head attention; only the head addressing differs.
//
// Forward: one OpenMP task per (sequence, query head), as attention.cpp; a group's key and value
// rows are packed again by each of its query heads (T*hd copies next to T*T*hd products).
// Backward: one task per (sequence, key/value group), which runs the group's g query heads in
// order, so that a key/value head's gradient (a sum over its query heads) is formed by one
// thread in a fixed order, without atomics.
#include <omp.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/flash_attention.h"

namespace shardlm {

namespace {

// Offsets (in floats) inside one sequence's qkv rows [T, KV, g+2, hd] and out rows [T, H, hd].
struct GqaLayout {
  int T, KV, g, hd;
  size_t row() const { return static_cast<size_t>(KV) * (g + 2) * hd; }  // qkv row stride
  size_t out_row() const { return static_cast<size_t>(KV) * g * hd; }    // out row stride
  size_t query(int h) const { return (static_cast<size_t>(h / g) * (g + 2) + h % g) * hd; }
  size_t key(int kv) const { return (static_cast<size_t>(kv) * (g + 2) + g) * hd; }
  size_t value(int kv) const { return key(kv) + hd; }
  size_t seq(int b) const { return static_cast<size_t>(b) * T * row(); }
  size_t out_seq(int b) const { return static_cast<size_t>(b) * T * out_row(); }
};

void check_gqa_shape(const char* op, int KV, int g, int hd) {
  if (KV < 1 || g < 1 || hd < 1)
    fail(std::string(op) + ": needs KV >= 1, g >= 1 and hd >= 1, got KV " + std::to_string(KV) +
         ", g " + std::to_string(g) + ", hd " + std::to_string(hd));
}

}  // namespace

void CpuBackend::attention_gqa_forward(float* out, float* lse, const float* qkv, int B, int T,
                                       int KV, int g, int hd) {
  const trace::Span span("attention_gqa_forward", trace::Kind::Kernel, 0, -1, "attention_gqa");
  check_gqa_shape("attention_gqa_forward", KV, g, hd);
  if (B == 0 || T == 0) return;
  const GqaLayout L{T, KV, g, hd};
  const int H = KV * g;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto workspaces = cpu::make_flash_workspaces(T, hd, 1);
#pragma omp parallel
  {
    cpu::FlashWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H, kv = h / g;
      const float* seq = qkv + L.seq(b);
      cpu::flash_forward_head(w, seq + L.query(h), seq + L.key(kv), seq + L.value(kv), L.row(),
                              scale, out + L.out_seq(b) + static_cast<size_t>(h) * hd, L.out_row(),
                              lse + static_cast<size_t>(bh) * T);
    }
  }
}

void CpuBackend::attention_gqa_backward(float* dqkv, const float* dout, const float* qkv,
                                        const float* out, const float* lse, int B, int T, int KV,
                                        int g, int hd) {
  const trace::Span span("attention_gqa_backward", trace::Kind::Kernel, 0, -1, "attention_gqa");
  check_gqa_shape("attention_gqa_backward", KV, g, hd);
  if (B == 0 || T == 0) return;
  const GqaLayout L{T, KV, g, hd};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto workspaces = cpu::make_flash_workspaces(T, hd, g);
#pragma omp parallel
  {
    cpu::FlashWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bkv = 0; bkv < B * KV; ++bkv) {
      const int b = bkv / KV, kv = bkv % KV;
      const float* seq = qkv + L.seq(b);
      float* dseq = dqkv + L.seq(b);
      const size_t first_head = L.out_seq(b) + static_cast<size_t>(kv) * g * hd;
      const cpu::FlashGroup group{seq + L.query(kv * g),   seq + L.key(kv),
                                  seq + L.value(kv),       L.row(),
                                  static_cast<size_t>(hd), out + first_head,
                                  dout + first_head,       L.out_row(),
                                  static_cast<size_t>(hd), lse + static_cast<size_t>(bkv) * g * T,
                                  dseq + L.query(kv * g),  dseq + L.key(kv),
                                  dseq + L.value(kv)};
      cpu::flash_backward_group(w, group, scale);
    }
  }
}

}  // namespace shardlm
