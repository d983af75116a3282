// KV-cached attention for inference: the cache append and the attention of a few new queries
// against every cached position (see backend.h). A decode step has one query per head and at
// most max_seq keys, so this is a plain dot-product / softmax / weighted-sum per (query, head)
// pair, parallel over the pairs; the softmax follows attention.cpp's (exp(scale*s - scale*max)
// with fast_exp) so that cached decoding reproduces the training forward to fp32 rounding.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/decode_head.h"

namespace shardlm {

void CpuBackend::kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq,
                                 int NH, int hd, int max_seq) {
  const trace::Span span("kv_cache_append", trace::Kind::Kernel, 0, -1, "decode");
  cpu::check_cache_positions("kv_cache_append", pos0, Tq, max_seq);
  const size_t C = static_cast<size_t>(NH) * hd;
  for (int i = 0; i < Tq; ++i) {
    const float* row = qkv + static_cast<size_t>(i) * 3 * C;
    for (int h = 0; h < NH; ++h) {
      const size_t dst = (static_cast<size_t>(h) * max_seq + pos0 + i) * hd;
      std::memcpy(k_cache + dst, row + C + static_cast<size_t>(h) * hd, sizeof(float) * hd);
      std::memcpy(v_cache + dst, row + 2 * C + static_cast<size_t>(h) * hd, sizeof(float) * hd);
    }
  }
}

void CpuBackend::attention_decode(float* out, const float* qkv, const float* k_cache,
                                  const float* v_cache, int pos0, int Tq, int NH, int hd,
                                  int max_seq) {
  const trace::Span span("attention_decode", trace::Kind::Kernel, 0, -1, "decode");
  cpu::check_cache_positions("attention_decode", pos0, Tq, max_seq);
  const size_t C = static_cast<size_t>(NH) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Per-thread score rows, allocated here so that a failure throws outside the parallel region.
  std::vector<float> scores(static_cast<size_t>(omp_get_max_threads()) * max_seq);
  // A few heads of one query are not worth waking the threads for.
  const bool parallel = static_cast<int64_t>(Tq) * (pos0 + Tq) * NH * hd >= (1 << 16);
#pragma omp parallel if (parallel)
  {
    float* thread_scores = scores.data() + static_cast<size_t>(omp_get_thread_num()) * max_seq;
#pragma omp for schedule(dynamic)
    for (int ih = 0; ih < Tq * NH; ++ih) {
      const int i = ih / NH, h = ih % NH;
      const size_t head_offset = static_cast<size_t>(h) * max_seq * hd;
      cpu::attend_one(out + static_cast<size_t>(i) * C + static_cast<size_t>(h) * hd,
                      qkv + static_cast<size_t>(i) * 3 * C + static_cast<size_t>(h) * hd,
                      k_cache + head_offset, v_cache + head_offset, pos0 + i + 1, hd, scale,
                      thread_scores);
    }
  }
}

}  // namespace shardlm
