// Causal multi-head self-attention, scale 1/sqrt(hd).
//
// Per (batch, head) the four products (Q K^T, P V and, backward, dO V^T, P^T dO, dS K, dS^T Q)
// are oneDNN GEMMs reading the heads in place from the interleaved qkv/out tensors (row
// stride 3C or C). The causal mask is exploited in blocks of kCausalBlock query rows: block
// [r0, r1) only needs keys [0, r1), which skips most of the masked upper triangle (5/8 of
// the full T x T work at T = 4 blocks) without making the GEMMs too small. The row-wise
// softmax and its backward run in one OpenMP region over all B*NH*T rows.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/gemm.h"

namespace shardlm {

using cpu::Transpose;

namespace {
constexpr int kCausalBlock = 64;

// Where one (b, h) pair's operands live.
struct HeadView {
  size_t qkv_offset;  // q of row 0 in qkv (k at +C, v at +2C), row stride 3C
  size_t out_offset;  // row 0 in out/dout, row stride C
  size_t att_offset;  // the T x T probability matrix, row stride T
};

HeadView head_view(int b, int h, int T, int NH, int hd) {
  const size_t C = static_cast<size_t>(NH) * hd;
  return {static_cast<size_t>(b) * T * 3 * C + static_cast<size_t>(h) * hd,
          static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * hd,
          (static_cast<size_t>(b) * NH + h) * T * T};
}
}  // namespace

void CpuBackend::attention_forward(float* out, float* att, const float* qkv, int B, int T, int NH,
                                   int hd) {
  const int64_t C = static_cast<int64_t>(NH) * hd;
  const int64_t C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  // att[t, 0..r1) = scale * q_t . k  for the query rows [r0, r1) of each block.
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const HeadView v = head_view(b, h, T, NH, hd);
      const float* q = qkv + v.qkv_offset;
      const float* k = q + C;
      for (int r0 = 0; r0 < T; r0 += kCausalBlock) {
        const int r1 = std::min(T, r0 + kCausalBlock);
        cpu::sgemm(Transpose::No, Transpose::Yes, r1 - r0, r1, hd, scale, q + r0 * C3, C3, k, C3,
                   0.0f, att + v.att_offset + static_cast<size_t>(r0) * T, T);
      }
    }
  }

  // Row softmax over keys t2 <= t; the masked keys get probability 0.
  const int64_t rows = static_cast<int64_t>(B) * NH * T;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int t = static_cast<int>(row % T);
    float* p = att + row * T;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int j = 0; j <= t; ++j) m = std::max(m, p[j]);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= t; ++j) {
      p[j] = cpu::fast_exp(p[j] - m);
      sum += p[j];
    }
    const float inv_sum = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j <= t; ++j) p[j] *= inv_sum;
    std::memset(p + t + 1, 0, sizeof(float) * (T - t - 1));
  }

  // out[t, h] = P[t, 0..r1) @ v[0..r1)
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const HeadView v = head_view(b, h, T, NH, hd);
      const float* val = qkv + v.qkv_offset + 2 * C;
      for (int r0 = 0; r0 < T; r0 += kCausalBlock) {
        const int r1 = std::min(T, r0 + kCausalBlock);
        cpu::sgemm(Transpose::No, Transpose::No, r1 - r0, hd, r1, 1.0f,
                   att + v.att_offset + static_cast<size_t>(r0) * T, T, val, C3, 0.0f,
                   out + v.out_offset + r0 * C, C);
      }
    }
  }
}

void CpuBackend::attention_backward(float* dqkv, float* scratch, const float* dout,
                                    const float* qkv, const float* att, int B, int T, int NH,
                                    int hd) {
  const int64_t C = static_cast<int64_t>(NH) * hd;
  const int64_t C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const HeadView v = head_view(b, h, T, NH, hd);
      const float* val = qkv + v.qkv_offset + 2 * C;
      const float* p = att + v.att_offset;
      const float* dy = dout + v.out_offset;
      float* dp = scratch + v.att_offset;
      float* dval = dqkv + v.qkv_offset + 2 * C;
      for (int r0 = 0; r0 < T; r0 += kCausalBlock) {
        const int r1 = std::min(T, r0 + kCausalBlock);
        // dP[t, 0..r1) = dout_t . v
        cpu::sgemm(Transpose::No, Transpose::Yes, r1 - r0, r1, hd, 1.0f, dy + r0 * C, C, val, C3,
                   0.0f, dp + static_cast<size_t>(r0) * T, T);
        // dv[r0..r1) = P[r0..T, r0..r1)^T @ dout[r0..T): key rows only see later queries.
        cpu::sgemm(Transpose::Yes, Transpose::No, r1 - r0, hd, T - r0, 1.0f,
                   p + static_cast<size_t>(r0) * T + r0, T, dy + r0 * C, C, 0.0f,
                   dval + r0 * C3, C3);
      }
    }
  }

  // Softmax backward in place: dS = P * (dP - sum_j P dP), zero on masked keys.
  const int64_t rows = static_cast<int64_t>(B) * NH * T;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int t = static_cast<int>(row % T);
    const float* p = att + row * T;
    float* ds = scratch + row * T;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j <= t; ++j) dot += p[j] * ds[j];
#pragma omp simd
    for (int j = 0; j <= t; ++j) ds[j] = p[j] * (ds[j] - dot);
    std::memset(ds + t + 1, 0, sizeof(float) * (T - t - 1));
  }

  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const HeadView v = head_view(b, h, T, NH, hd);
      const float* q = qkv + v.qkv_offset;
      const float* k = q + C;
      const float* ds = scratch + v.att_offset;
      float* dq = dqkv + v.qkv_offset;
      float* dk = dq + C;
      for (int r0 = 0; r0 < T; r0 += kCausalBlock) {
        const int r1 = std::min(T, r0 + kCausalBlock);
        // dq[r0..r1) = scale * dS[r0..r1, 0..r1) @ k[0..r1)
        cpu::sgemm(Transpose::No, Transpose::No, r1 - r0, hd, r1, scale,
                   ds + static_cast<size_t>(r0) * T, T, k, C3, 0.0f, dq + r0 * C3, C3);
        // dk[r0..r1) = scale * dS[r0..T, r0..r1)^T @ q[r0..T)
        cpu::sgemm(Transpose::Yes, Transpose::No, r1 - r0, hd, T - r0, scale,
                   ds + static_cast<size_t>(r0) * T + r0, T, q + r0 * C3, C3, 0.0f, dk + r0 * C3,
                   C3);
      }
    }
  }
}

}  // namespace shardlm
