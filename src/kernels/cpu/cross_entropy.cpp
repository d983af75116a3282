// Vocab-parallel softmax cross-entropy. A rank's logits cover vocabulary columns
// [vocab_start, vocab_start + Vl); only the first `valid` of them are real tokens (the rest
// pad the vocabulary up to a GEMM- and TP-friendly size) and never get probability or gradient.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fast_math.h"

namespace shardlm {

namespace {
// Number of this rank's columns that are real vocabulary entries.
int valid_columns(int Vl, int vocab_start, int vocab_size) {
  return std::clamp(vocab_size - vocab_start, 0, Vl);
}

// The column of targets[n] in this rank's logits, or -1 if another rank owns it.
int local_target(int32_t target, int vocab_start, int valid) {
  const int64_t local = static_cast<int64_t>(target) - vocab_start;
  return local >= 0 && local < valid ? static_cast<int>(local) : -1;
}
}  // namespace

void CpuBackend::xent_row_max(float* row_max, const float* logits, int N, int Vl,
                              int vocab_start, int vocab_size) {
  const int valid = valid_columns(Vl, vocab_start, vocab_size);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* row = logits + static_cast<size_t>(n) * Vl;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int j = 0; j < valid; ++j) m = std::max(m, row[j]);
    row_max[n] = m;
  }
}

void CpuBackend::xent_partial_sums(float* sum_exp, float* target_logit, const float* logits,
                                   const float* row_max, const int32_t* targets, int N, int Vl,
                                   int vocab_start, int vocab_size) {
  const int valid = valid_columns(Vl, vocab_start, vocab_size);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* row = logits + static_cast<size_t>(n) * Vl;
    const float m = row_max[n];
    float sum = 0.0f;
    // A row_max of -inf means no valid column anywhere: leave the sum 0 rather than NaN.
    if (m != -std::numeric_limits<float>::infinity()) {
#pragma omp simd reduction(+ : sum)
      for (int j = 0; j < valid; ++j) sum += cpu::fast_exp(row[j] - m);
    }
    sum_exp[n] = sum;
    const int t = local_target(targets[n], vocab_start, valid);
    target_logit[n] = t >= 0 ? row[t] : 0.0f;
  }
}

void CpuBackend::xent_loss(float* losses, const float* row_max, const float* sum_exp,
                           const float* target_logit, int N) {
  for (int n = 0; n < N; ++n) losses[n] = std::log(sum_exp[n]) + row_max[n] - target_logit[n];
}

void CpuBackend::xent_backward(float* dlogits, const float* logits, const float* row_max,
                               const float* sum_exp, const int32_t* targets, float dloss, int N,
                               int Vl, int vocab_start, int vocab_size) {
  const int valid = valid_columns(Vl, vocab_start, vocab_size);
  // dlogits may alias logits: each element is read before it is written, at the same index.
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* row = logits + static_cast<size_t>(n) * Vl;
    float* drow = dlogits + static_cast<size_t>(n) * Vl;
    const float m = row_max[n];
    const float scale = dloss / sum_exp[n];
#pragma omp simd
    for (int j = 0; j < valid; ++j) drow[j] = cpu::fast_exp(row[j] - m) * scale;
    const int t = local_target(targets[n], vocab_start, valid);
    if (t >= 0) drow[t] -= dloss;
    if (valid < Vl) std::memset(drow + valid, 0, sizeof(float) * (Vl - valid));
  }
}

}  // namespace shardlm
