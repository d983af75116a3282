// One head's causal softmax attention (see attention_head.h), scale given by the caller.
//
// Each call packs the head's operands into padded, contiguous buffers of the thread's
// HeadWorkspace and runs register-blocked micro-kernels (16-float vectors, AVX-512 with
// -march=native) that skip the masked upper triangle tile by tile. Measured on the mini model's
// shapes (T=256, hd=64, 48 heads) this is several times faster than one oneDNN sgemm call per
// head and causal block: those GEMMs are small (256 x 256 x 64 and less), and each call opens
// and joins its own parallel region (see docs/performance.md).
//
// Two micro-kernels cover all six products:
//  - scores_tile:  S[t, j] = sum_d A[t, d] * Bt[d, j]  (Q K^T forward, dO V^T backward), with
//                  the right operand packed transposed so that j runs along a vector;
//  - weighted_rows: Y[i, :] = sum_k P(i, k) * X[k, :]  (P V, dS K, and with P read transposed
//                  P^T dO and dS^T Q), X rows padded to whole vectors.
#include "kernels/cpu/attention_head.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/vec16.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

namespace {

constexpr int kScoreRows = 8;  // query rows per scores tile (8 x 32 = 16 accumulators)
constexpr int kScoreCols = 2 * kLanes;
constexpr int kWeightedRows = 4;  // rows per weighted_rows tile (4 x 64 = 16 accumulators)
constexpr int kWeightedVecs = 4;  // vectors per weighted_rows column chunk

inline int round_up(int x, int m) {
  return (x + m - 1) / m * m;
}

// out[r, j] = sum_{d < K} a[r*lda + d] * bt[d*ldb + j] for r < kScoreRows, j < ncols
// (ncols a multiple of kScoreCols).
void scores_tile(const float* a, int lda, const float* bt, int ldb, int K, int ncols, float* out,
                 int ldo) {
  for (int j = 0; j < ncols; j += kScoreCols) {
    Vec16 acc[kScoreRows][2] = {};
    for (int d = 0; d < K; ++d) {
      const Vec16 b0 = load16(bt + static_cast<size_t>(d) * ldb + j);
      const Vec16 b1 = load16(bt + static_cast<size_t>(d) * ldb + j + kLanes);
#pragma GCC unroll 8
      for (int r = 0; r < kScoreRows; ++r) {
        const Vec16 x = splat16(a[r * lda + d]);
        acc[r][0] += x * b0;
        acc[r][1] += x * b1;
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < kScoreRows; ++r) {
      store16(out + r * ldo + j, acc[r][0]);
      store16(out + r * ldo + j + kLanes, acc[r][1]);
    }
  }
}

// out[r, 0..16*NV) = sum_{k0 <= k < k1} prow[r][k*sk] * x[k*ldx + 0..16*NV) for r < kWeightedRows.
template <int NV>
void weighted_rows_chunk(const float* const* prow, int sk, int k0, int k1, const float* x, int ldx,
                         float* out, int ldo) {
  Vec16 acc[kWeightedRows][NV] = {};
  for (int k = k0; k < k1; ++k) {
    Vec16 xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) xv[v] = load16(x + static_cast<size_t>(k) * ldx + v * kLanes);
#pragma GCC unroll 4
    for (int r = 0; r < kWeightedRows; ++r) {
      const Vec16 w = splat16(prow[r][static_cast<size_t>(k) * sk]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += w * xv[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < kWeightedRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store16(out + r * ldo + v * kLanes, acc[r][v]);
}

// All hdp (= padded head size) columns of a weighted_rows tile, in chunks of <= 4 vectors.
void weighted_rows(const float* const* prow, int sk, int k0, int k1, const float* x, int ldx,
                   int hdp, float* out, int ldo) {
  for (int c = 0; c < hdp; c += kWeightedVecs * kLanes) {
    switch (std::min(kWeightedVecs, (hdp - c) / kLanes)) {
      case 4:
        weighted_rows_chunk<4>(prow, sk, k0, k1, x + c, ldx, out + c, ldo);
        break;
      case 3:
        weighted_rows_chunk<3>(prow, sk, k0, k1, x + c, ldx, out + c, ldo);
        break;
      case 2:
        weighted_rows_chunk<2>(prow, sk, k0, k1, x + c, ldx, out + c, ldo);
        break;
      default:
        weighted_rows_chunk<1>(prow, sk, k0, k1, x + c, ldx, out + c, ldo);
        break;
    }
  }
}

// Which P entries a weighted_rows product reads: P[i, k] (row-major, k <= i: P @ X) or
// P[k, i] (the transpose, k >= i: P^T @ X).
enum class Side { Lower, LowerTransposed };

// y[i, 0..hd) = scale * sum_k P(i, k) x[k, :] for rows row_begin <= i < row_end, written or
// (accumulate) added; P is T x T row-major. x rows are read from k = row_begin on for the
// transposed side and up to row_end for the lower one (the causal ranges).
void weighted_product(const float* p, Side side, const float* x, int ldx, int T, int hd, int hdp,
                      float scale, int row_begin, int row_end, bool accumulate, float* y, int ldy,
                      float* tile) {
  const int sk = side == Side::Lower ? 1 : T;
  for (int i0 = row_begin; i0 < row_end; i0 += kWeightedRows) {
    const int rows = std::min(kWeightedRows, row_end - i0);
    // Rows past T repeat row T-1 (computed, not stored) so the kernel has one shape.
    const float* prow[kWeightedRows];
    for (int r = 0; r < kWeightedRows; ++r) {
      const int i = std::min(i0 + r, T - 1);
      prow[r] = side == Side::Lower ? p + static_cast<size_t>(i) * T : p + i;
    }
    // Causal: row i of P has k <= i; row i of P^T has k >= i.
    const int k0 = side == Side::Lower ? 0 : i0;
    const int k1 = side == Side::Lower ? std::min(T, i0 + kWeightedRows) : T;
    weighted_rows(prow, sk, k0, k1, x, ldx, hdp, tile, hdp);
    for (int r = 0; r < rows; ++r) {
      float* dst = y + static_cast<size_t>(i0 + r) * ldy;
      const float* src = tile + r * hdp;
      if (accumulate) {
#pragma omp simd
        for (int d = 0; d < hd; ++d) dst[d] += scale * src[d];
      } else {
#pragma omp simd
        for (int d = 0; d < hd; ++d) dst[d] = scale * src[d];
      }
    }
  }
}

// Copies rows x[t*ldx + 0..hd) for t < T into dst [rows_padded, hdp], zero elsewhere.
void pack_rows(float* dst, const float* x, size_t ldx, int T, int rows_padded, int hd, int hdp) {
  for (int t = 0; t < T; ++t) {
    float* row = dst + static_cast<size_t>(t) * hdp;
    std::memcpy(row, x + t * ldx, sizeof(float) * hd);
    std::memset(row + hd, 0, sizeof(float) * (hdp - hd));
  }
  std::memset(dst + static_cast<size_t>(T) * hdp, 0, sizeof(float) * (rows_padded - T) * hdp);
}

// dst[d, t] = x[t*ldx + d] for d < hd, t < T, as [hd, Tp] with zero columns T..Tp. Blocked
// 16 x 16 so both the reads and the writes stay within a few cache lines at a time.
void pack_transposed(float* dst, const float* x, size_t ldx, int T, int Tp, int hd) {
  for (int t0 = 0; t0 < T; t0 += kLanes)
    for (int d0 = 0; d0 < hd; d0 += kLanes) {
      const int t1 = std::min(T, t0 + kLanes), d1 = std::min(hd, d0 + kLanes);
      for (int t = t0; t < t1; ++t)
        for (int d = d0; d < d1; ++d) dst[static_cast<size_t>(d) * Tp + t] = x[t * ldx + d];
    }
  for (int d = 0; d < hd; ++d)
    std::memset(dst + static_cast<size_t>(d) * Tp + T, 0, sizeof(float) * (Tp - T));
}

// Lane indices 0..15, to mask the lanes of the last vector that lie past a row's end.
const Vec16 kLaneIndex = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

// prow[0..T) = softmax(scale * s[0..n)) followed by zeros (the masked keys). s is a score-tile
// row, valid to at least n rounded up to whole vectors, and is overwritten. Written with
// explicit vectors: GCC's `omp simd` max/sum reductions here compile to a store-forwarding
// stall per row.
void softmax_row(float* prow, float* s, int n, int T, float scale) {
  const Vec16 neg_inf = splat16(-std::numeric_limits<float>::infinity());
  const float n_float = static_cast<float>(n);
  Vec16 max_v = neg_inf;
  for (int j = 0; j < n; j += kLanes) {
    const Vec16 x = load16(s + j);
    const Vec16 masked = kLaneIndex + static_cast<float>(j) < n_float ? x : neg_inf;
    max_v = masked > max_v ? masked : max_v;
  }
  const Vec16 scaled_max = splat16(scale * horizontal_max(max_v));
  Vec16 sum_v = {};
  for (int j = 0; j < n; j += kLanes) {
    const Vec16 e = fast_exp(load16(s + j) * scale - scaled_max);
    const Vec16 masked = kLaneIndex + static_cast<float>(j) < n_float ? e : Vec16{};
    store16(s + j, masked);
    sum_v += masked;
  }
  const float inv_sum = 1.0f / horizontal_sum(sum_v);
#pragma omp simd
  for (int j = 0; j < n; ++j) prow[j] = s[j] * inv_sum;
  std::memset(prow + n, 0, sizeof(float) * (T - n));
}

// dsrow[0..T) = prow * (dp - sum(prow * dp)) on the first n keys, zeros after. prow is a row
// of the forward's probabilities, which are exactly 0 past n, so whole vectors may run past n
// (but not past the row's end T); dp is a score-tile row, valid to n rounded up to vectors.
void softmax_backward_row(float* dsrow, const float* prow, const float* dp, int n, int T) {
  const int whole = std::min(n + kLanes - 1, T) / kLanes * kLanes;  // vectors within the row
  Vec16 dot_v = {};
  for (int j = 0; j < whole; j += kLanes) dot_v += load16(prow + j) * load16(dp + j);
  float dot = horizontal_sum(dot_v);
  for (int j = whole; j < n; ++j) dot += prow[j] * dp[j];
  const Vec16 dot_b = splat16(dot);
  for (int j = 0; j < whole; j += kLanes)
    store16(dsrow + j, load16(prow + j) * (load16(dp + j) - dot_b));
  for (int j = whole; j < n; ++j) dsrow[j] = prow[j] * (dp[j] - dot);
  const int written = std::max(whole, n);
  std::memset(dsrow + written, 0, sizeof(float) * (T - written));
}

// For each kScoreRows block of query rows t (A rows packed in a [rows_padded, hdp] buffer and
// Bt packed transposed), computes the scores of keys 0..t and hands each row to row_fn(t, s).
template <typename RowFn>
void for_each_score_row(const HeadWorkspace& w, const float* a, const float* bt, RowFn row_fn) {
  for (int t0 = 0; t0 < w.T; t0 += kScoreRows) {
    const int ncols = round_up(std::min(w.T, t0 + kScoreRows), kScoreCols);
    scores_tile(a + static_cast<size_t>(t0) * w.hdp, w.hdp, w.transposed, w.Tp, w.hd, ncols,
                w.score_tile, w.Tp);
    for (int r = 0; r < kScoreRows && t0 + r < w.T; ++r) row_fn(t0 + r, w.score_tile + r * w.Tp);
  }
}

}  // namespace

HeadWorkspace::HeadWorkspace(int T, int hd)
    : T(T),
      hd(hd),
      hdp(round_up(hd, kLanes)),
      // One extra cache line per row: a row stride of a power-of-two bytes (T = 256) maps
      // the hd rows that scores_tile reads together onto a handful of L1 sets.
      Tp(round_up(T, kScoreCols) + kLanes),
      rows_padded(round_up(T, kScoreRows)) {
  const size_t rows_block = static_cast<size_t>(rows_padded) * hdp;
  const size_t floats = 3 * rows_block + static_cast<size_t>(hd) * Tp +
                        static_cast<size_t>(kScoreRows) * Tp + kWeightedRows * hdp;
  const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
  memory_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!memory_)
    fail("attention: out of memory allocating a " + std::to_string(bytes) + "-byte workspace");
  rows_a = memory_.get();
  rows_b = rows_a + rows_block;
  rows_c = rows_b + rows_block;
  transposed = rows_c + rows_block;
  score_tile = transposed + static_cast<size_t>(hd) * Tp;
  out_tile = score_tile + static_cast<size_t>(kScoreRows) * Tp;
}

void HeadWorkspace::Free::operator()(float* p) const {
  std::free(p);
}

std::vector<std::unique_ptr<HeadWorkspace>> make_workspaces(int T, int hd) {
  std::vector<std::unique_ptr<HeadWorkspace>> workspaces;
  for (int t = 0; t < omp_get_max_threads(); ++t)
    workspaces.push_back(std::make_unique<HeadWorkspace>(T, hd));
  return workspaces;
}

void head_attention_forward(HeadWorkspace& w, const float* q, const float* k, const float* v,
                            size_t ld, float scale, float* p, float* out, size_t ldo) {
  const int T = w.T, hd = w.hd;
  pack_rows(w.rows_a, q, ld, T, w.rows_padded, hd, w.hdp);
  // Row copies stream from memory; the transpose then reads the compact copy from cache.
  pack_rows(w.rows_c, k, ld, T, w.rows_padded, hd, w.hdp);
  pack_transposed(w.transposed, w.rows_c, w.hdp, T, w.Tp, hd);
  pack_rows(w.rows_b, v, ld, T, w.rows_padded, hd, w.hdp);

  // P[t, :] = softmax(scale * q_t . k_j over j <= t), 0 for the masked j > t.
  for_each_score_row(w, w.rows_a, w.transposed, [&](int t, float* s) {
    softmax_row(p + static_cast<size_t>(t) * T, s, t + 1, T, scale);
  });
  // out[t, :] = P[t, :] @ v
  weighted_product(p, Side::Lower, w.rows_b, w.hdp, T, hd, w.hdp, 1.0f, 0, T, false, out,
                   static_cast<int>(ldo), w.out_tile);
}

void head_attention_backward(HeadWorkspace& w, const float* q, const float* k, const float* v,
                             size_t ld, const float* dy, size_t ldy, const float* p, float scale,
                             float* ds, float* dq, float* dk, float* dv) {
  const int T = w.T, hd = w.hd;
  pack_rows(w.rows_a, dy, ldy, T, w.rows_padded, hd, w.hdp);
  pack_rows(w.rows_b, v, ld, T, w.rows_padded, hd, w.hdp);
  pack_transposed(w.transposed, w.rows_b, w.hdp, T, w.Tp, hd);

  // dS[t, j] = P[t, j] * (dP[t, j] - sum_i P[t, i] dP[t, i]) with dP = dout_t . v_j,
  // 0 for the masked j > t.
  for_each_score_row(w, w.rows_a, w.transposed, [&](int t, const float* dp) {
    softmax_backward_row(ds + static_cast<size_t>(t) * T, p + static_cast<size_t>(t) * T, dp, t + 1,
                         T);
  });

  pack_rows(w.rows_b, k, ld, T, w.rows_padded, hd, w.hdp);
  const int ldi = static_cast<int>(ld);
  // dq = scale * dS @ k;  dk = scale * dS^T @ q;  dv = P^T @ dout
  weighted_product(ds, Side::Lower, w.rows_b, w.hdp, T, hd, w.hdp, scale, 0, T, false, dq, ldi,
                   w.out_tile);
  if (dk == nullptr || dv == nullptr) return;
  pack_rows(w.rows_c, q, ld, T, w.rows_padded, hd, w.hdp);
  weighted_product(ds, Side::LowerTransposed, w.rows_c, w.hdp, T, hd, w.hdp, scale, 0, T, false, dk,
                   ldi, w.out_tile);
  weighted_product(p, Side::LowerTransposed, w.rows_a, w.hdp, T, hd, w.hdp, 1.0f, 0, T, false, dv,
                   ldi, w.out_tile);
}

void head_key_gradients(HeadWorkspace& w, const float* q, size_t ld, const float* dy, size_t ldy,
                        const float* p, const float* ds, float scale, int j0, int j1,
                        bool accumulate, float* dk, float* dv) {
  const int T = w.T, hd = w.hd;
  if (j0 >= j1) return;
  // Rows j0..T-1 of q and dy at their own positions in the packed buffers.
  const size_t first = static_cast<size_t>(j0) * w.hdp;
  pack_rows(w.rows_c + first, q + j0 * ld, ld, T - j0, w.rows_padded - j0, hd, w.hdp);
  pack_rows(w.rows_a + first, dy + j0 * ldy, ldy, T - j0, w.rows_padded - j0, hd, w.hdp);
  const int ldi = static_cast<int>(ld);
  weighted_product(ds, Side::LowerTransposed, w.rows_c, w.hdp, T, hd, w.hdp, scale, j0, j1,
                   accumulate, dk, ldi, w.out_tile);
  weighted_product(p, Side::LowerTransposed, w.rows_a, w.hdp, T, hd, w.hdp, 1.0f, j0, j1,
                   accumulate, dv, ldi, w.out_tile);
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
