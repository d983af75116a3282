// Causal grouped-query attention, scale 1/sqrt(hd), over qkv rows [KV, g+2, hd] (see backend.h):
// query head h = kv*g + i attends with key/value head kv. The per-head work is
// attention_head.h's, as for multi-head attention; only the head addressing and the key/value
// gradient (a sum over the g query heads of a group) differ.
//
// Forward: one OpenMP task per (sequence, query head), as attention.cpp; a group's key and value
// rows are packed again by each of its query heads (T*hd copies next to T*T*hd products).
// Backward with g = 1: exactly the multi-head backward per head. With g > 1 two phases, so that
// no two threads add into the same key/value row and the sum runs in a fixed order:
//  1. per (sequence, query head): dS into scratch and dq (the query side needs no reduction);
//  2. per (sequence, group, block of key rows): dk and dv of those rows, summed over the
//     group's query heads i = 0..g-1 in order. Blocks keep every thread busy when B*KV is small
//     (MQA); the first blocks hold the most work (key j is seen by T-j queries) and are handed
//     out first.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/trace.h"
#include "kernels/cpu/attention_head.h"
#include "kernels/cpu/cpu_backend.h"

namespace shardlm {

namespace {

constexpr int kKeyBlock = 64;  // key rows per phase-2 task (a multiple of the 4-row tiles)

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

void CpuBackend::attention_gqa_forward(float* out, float* att, const float* qkv, int B, int T,
                                       int KV, int g, int hd) {
  const trace::Span span("attention_gqa_forward", trace::Kind::Kernel, 0, -1, "attention_gqa");
  check_gqa_shape("attention_gqa_forward", KV, g, hd);
  if (B == 0 || T == 0) return;
  const GqaLayout L{T, KV, g, hd};
  const int H = KV * g;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::vector<std::unique_ptr<cpu::HeadWorkspace>> workspaces = cpu::make_workspaces(T, hd);
#pragma omp parallel
  {
    cpu::HeadWorkspace& w = *workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H, kv = h / g;
      const float* seq = qkv + L.seq(b);
      cpu::head_attention_forward(w, seq + L.query(h), seq + L.key(kv), seq + L.value(kv), L.row(),
                                  scale, att + static_cast<size_t>(bh) * T * T,
                                  out + L.out_seq(b) + static_cast<size_t>(h) * hd, L.out_row());
    }
  }
}

void CpuBackend::attention_gqa_backward(float* dqkv, float* scratch, const float* dout,
                                        const float* qkv, const float* att, int B, int T, int KV,
                                        int g, int hd) {
  const trace::Span span("attention_gqa_backward", trace::Kind::Kernel, 0, -1, "attention_gqa");
  check_gqa_shape("attention_gqa_backward", KV, g, hd);
  if (B == 0 || T == 0) return;
  const GqaLayout L{T, KV, g, hd};
  const int H = KV * g;
  const size_t TT = static_cast<size_t>(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int key_blocks = (T + kKeyBlock - 1) / kKeyBlock;
  const std::vector<std::unique_ptr<cpu::HeadWorkspace>> workspaces = cpu::make_workspaces(T, hd);
#pragma omp parallel
  {
    cpu::HeadWorkspace& w = *workspaces[omp_get_thread_num()];
    // Phase 1 (and, for g = 1, everything): dS and dq per query head.
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H, kv = h / g;
      const float* seq = qkv + L.seq(b);
      float* dseq = dqkv + L.seq(b);
      const bool own_kv = g == 1;  // the group's only query head: write dk, dv here
      cpu::head_attention_backward(w, seq + L.query(h), seq + L.key(kv), seq + L.value(kv), L.row(),
                                   dout + L.out_seq(b) + static_cast<size_t>(h) * hd, L.out_row(),
                                   att + bh * TT, scale, scratch + bh * TT, dseq + L.query(h),
                                   own_kv ? dseq + L.key(kv) : nullptr,
                                   own_kv ? dseq + L.value(kv) : nullptr);
    }
    // (the implicit barrier of the loop above: every dS is in scratch)
    if (g > 1) {
      // Phase 2: blocks of key rows, the largest (first) blocks of every group first.
#pragma omp for schedule(dynamic)
      for (int task = 0; task < key_blocks * B * KV; ++task) {
        const int block = task / (B * KV), b = task % (B * KV) / KV, kv = task % KV;
        const int j0 = block * kKeyBlock, j1 = std::min(T, j0 + kKeyBlock);
        const float* seq = qkv + L.seq(b);
        float* dseq = dqkv + L.seq(b);
        for (int i = 0; i < g; ++i) {
          const int h = kv * g + i;
          const size_t tt = (static_cast<size_t>(b) * H + h) * TT;
          cpu::head_key_gradients(w, seq + L.query(h), L.row(),
                                  dout + L.out_seq(b) + static_cast<size_t>(h) * hd, L.out_row(),
                                  att + tt, scratch + tt, scale, j0, j1, i > 0, dseq + L.key(kv),
                                  dseq + L.value(kv));
        }
      }
    }
  }
}

}  // namespace shardlm
