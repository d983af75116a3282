// Vocab-parallel softmax cross-entropy. A rank's logits cover vocabulary columns
// [vocab_start, vocab_start + Vl); only the first `valid` of them are real tokens (the rest
// pad the vocabulary up to a GEMM- and TP-friendly size) and never get probability or gradient.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/trace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/vec16.h"

namespace shardlm {

namespace {
// Number of this rank's columns that are real vocabulary entries.
int valid_columns(int Vl, int vocab_start, int vocab_size) {
  return std::clamp(vocab_size - vocab_start, 0, Vl);
}

// max(row[0..n)), -inf for n = 0. The reductions are written with explicit vectors: GCC's
// `omp simd reduction(max)` compiles to a loop several times slower here.
float max_of(const float* row, int n) {
  cpu::Vec16 max_v = cpu::splat16(-std::numeric_limits<float>::infinity());
  int j = 0;
  for (; j + cpu::kLanes <= n; j += cpu::kLanes) {
    const cpu::Vec16 x = cpu::load16(row + j);
    max_v = x > max_v ? x : max_v;
  }
  float m = cpu::horizontal_max(max_v);
  for (; j < n; ++j) m = row[j] > m ? row[j] : m;
  return m;
}

// sum_j exp(row[j] - max) over row[0..n).
float sum_exp_of(const float* row, int n, float max) {
  const cpu::Vec16 max_v = cpu::splat16(max);
  cpu::Vec16 sum_v = {};
  int j = 0;
  for (; j + cpu::kLanes <= n; j += cpu::kLanes)
    sum_v += cpu::fast_exp(cpu::load16(row + j) - max_v);
  float sum = cpu::horizontal_sum(sum_v);
  for (; j < n; ++j) sum += cpu::fast_exp(row[j] - max);
  return sum;
}

// The column of targets[n] in this rank's logits, or -1 if another rank owns it.
int local_target(int32_t target, int vocab_start, int valid) {
  const int64_t local = static_cast<int64_t>(target) - vocab_start;
  return local >= 0 && local < valid ? static_cast<int>(local) : -1;
}
}  // namespace

void CpuBackend::xent_row_max(float* row_max, const float* logits, int N, int Vl, int vocab_start,
                              int vocab_size) {
  const trace::Span span("xent_row_max", trace::Kind::Kernel, 0, -1, "cross_entropy");
  const int valid = valid_columns(Vl, vocab_start, vocab_size);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    row_max[n] = max_of(logits + static_cast<size_t>(n) * Vl, valid);
  }
}

void CpuBackend::xent_partial_sums(float* sum_exp, float* target_logit, const float* logits,
                                   const float* row_max, const int32_t* targets, int N, int Vl,
                                   int vocab_start, int vocab_size) {
  const trace::Span span("xent_partial_sums", trace::Kind::Kernel, 0, -1, "cross_entropy");
  const int valid = valid_columns(Vl, vocab_start, vocab_size);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* row = logits + static_cast<size_t>(n) * Vl;
    const float m = row_max[n];
    // A row_max of -inf means no valid column anywhere: leave the sum 0 rather than NaN.
    sum_exp[n] = m == -std::numeric_limits<float>::infinity() ? 0.0f : sum_exp_of(row, valid, m);
    const int t = local_target(targets[n], vocab_start, valid);
    target_logit[n] = t >= 0 ? row[t] : 0.0f;
  }
}

void CpuBackend::xent_loss(float* losses, const float* row_max, const float* sum_exp,
                           const float* target_logit, int N) {
  const trace::Span span("xent_loss", trace::Kind::Kernel, 0, -1, "cross_entropy");
  for (int n = 0; n < N; ++n) losses[n] = std::log(sum_exp[n]) + row_max[n] - target_logit[n];
}

void CpuBackend::xent_backward(float* dlogits, const float* logits, const float* row_max,
                               const float* sum_exp, const int32_t* targets, float dloss, int N,
                               int Vl, int vocab_start, int vocab_size) {
  const trace::Span span("xent_backward", trace::Kind::Kernel, 0, -1, "cross_entropy");
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
