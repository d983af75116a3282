// KV-cached grouped-query attention for inference (see backend.h): the cache holds the KV
// key/value heads, not the H = KV*g query heads, so it is g times smaller than a multi-head
// cache. Query head h = kv*g + i attends over cache head kv; the per-query work is decode.cpp's
// (attend_one), parallel over the (query, head) pairs, so decoding reproduces
// attention_gqa_forward to fp32 rounding.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/decode_head.h"

namespace shardlm {

void CpuBackend::kv_cache_append_gqa(float* k_cache, float* v_cache, const float* qkv, int pos0,
                                     int Tq, int KV, int g, int hd, int max_seq) {
  const trace::Span span("kv_cache_append_gqa", trace::Kind::Kernel, 0, -1, "decode_gqa");
  cpu::check_cache_positions("kv_cache_append_gqa", pos0, Tq, max_seq);
  const size_t row = static_cast<size_t>(KV) * (g + 2) * hd;
  for (int i = 0; i < Tq; ++i)
    for (int kv = 0; kv < KV; ++kv) {
      const float* key = qkv + i * row + (static_cast<size_t>(kv) * (g + 2) + g) * hd;
      const size_t dst = (static_cast<size_t>(kv) * max_seq + pos0 + i) * hd;
      std::memcpy(k_cache + dst, key, sizeof(float) * hd);
      std::memcpy(v_cache + dst, key + hd, sizeof(float) * hd);
    }
}

void CpuBackend::attention_decode_gqa(float* out, const float* qkv, const float* k_cache,
                                      const float* v_cache, int pos0, int Tq, int KV, int g, int hd,
                                      int max_seq) {
  const trace::Span span("attention_decode_gqa", trace::Kind::Kernel, 0, -1, "decode_gqa");
  cpu::check_cache_positions("attention_decode_gqa", pos0, Tq, max_seq);
  const int H = KV * g;
  const size_t row = static_cast<size_t>(KV) * (g + 2) * hd, out_row = static_cast<size_t>(H) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Per-thread score rows, allocated here so that a failure throws outside the parallel region.
  std::vector<float> scores(static_cast<size_t>(omp_get_max_threads()) * max_seq);
  // A few heads of one query are not worth waking the threads for.
  const bool parallel = static_cast<int64_t>(Tq) * (pos0 + Tq) * H * hd >= (1 << 16);
#pragma omp parallel if (parallel)
  {
    float* thread_scores = scores.data() + static_cast<size_t>(omp_get_thread_num()) * max_seq;
#pragma omp for schedule(dynamic)
    for (int ih = 0; ih < Tq * H; ++ih) {
      const int i = ih / H, h = ih % H, kv = h / g;
      const size_t cache_head = static_cast<size_t>(kv) * max_seq * hd;
      const float* q = qkv + i * row + (static_cast<size_t>(kv) * (g + 2) + h % g) * hd;
      cpu::attend_one(out + i * out_row + static_cast<size_t>(h) * hd, q, k_cache + cache_head,
                      v_cache + cache_head, pos0 + i + 1, hd, scale, thread_scores);
    }
  }
}

}  // namespace shardlm
