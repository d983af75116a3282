// The pieces of KV-cached attention shared by decode.cpp (multi-head) and decode_gqa.cpp
// (grouped-query): the cache-position check and one query's attention over a head's cache.
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "core/error.h"
#include "kernels/cpu/fast_math.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

// Throws naming the op and the positions when [pos0, pos0 + Tq) does not fit the cache.
inline void check_cache_positions(const char* op, int pos0, int Tq, int max_seq) {
  if (pos0 < 0 || Tq < 0 || pos0 + Tq > max_seq)
    fail(std::string(op) + ": positions [" + std::to_string(pos0) + ", " +
         std::to_string(pos0 + Tq) + ") do not fit a cache of " + std::to_string(max_seq) +
         " positions");
}

// out[0..hd) = softmax_j(scale * q . k_j for j < n) @ v_j. k and v are one head's cache rows
// [max_seq, hd]; scores is scratch of at least n floats.
inline void attend_one(float* out, const float* q, const float* k, const float* v, int n, int hd,
                       float scale, float* scores) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < n; ++j) {
    const float* kj = k + static_cast<size_t>(j) * hd;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int d = 0; d < hd; ++d) dot += q[d] * kj[d];
    scores[j] = dot;
    max_score = std::max(max_score, dot);
  }
  const float scaled_max = scale * max_score;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; ++j) {
    scores[j] = fast_exp(scores[j] * scale - scaled_max);
    sum += scores[j];
  }
  const float inv_sum = 1.0f / sum;
  std::memset(out, 0, sizeof(float) * hd);
  for (int j = 0; j < n; ++j) {
    const float p = scores[j] * inv_sum;
    const float* vj = v + static_cast<size_t>(j) * hd;
#pragma omp simd
    for (int d = 0; d < hd; ++d) out[d] += p * vj[d];
  }
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
