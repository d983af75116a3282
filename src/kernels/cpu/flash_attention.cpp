// Flash-style causal attention on the CPU (see flash_attention.h).
//
// Query block i (rows i0 = i*kBlock ..) meets key blocks j <= i only; blocks j < i are whole,
// the diagonal block j = i is masked per element. Queries are packed pre-multiplied by the
// softmax scale, so scores, probabilities and dk need no further scaling (dq takes it at the
// end). Padding rows past T are zero (keys, values, queries, dout) with lse = +inf, so their
// probabilities are exactly 0 and nothing needs a bounds check inside a tile.
#include "kernels/cpu/flash_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "core/error.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/tile_gemm.h"
#include "kernels/cpu/vec16.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

namespace {

constexpr int kBlock = 64;  // query and key rows per tile (a multiple of kLanes)
constexpr float kInf = std::numeric_limits<float>::infinity();

int round_up(int x, int m) {
  return (x + m - 1) / m * m;
}

// Rows this far ahead are prefetched: a head's rows lie ld floats apart (3C in the qkv
// activation, more than a 4 KiB page), a stride the hardware prefetchers do not follow, so
// without it every row of a head waits for its cache lines in turn.
constexpr int kPrefetchRows = 8;

// Asks for row t + kPrefetchRows of x (hd floats, row stride ld) if it is below `end`; for
// writing when kWrite (the rows a kernel stores into are read first by the cache).
template <bool kWrite = false>
void prefetch_row_ahead(const float* x, size_t ld, int t, int end, int hd) {
  if (t + kPrefetchRows >= end) return;
  const float* ahead = x + (t + kPrefetchRows) * ld;
  for (int d = 0; d < hd; d += 16) __builtin_prefetch(ahead + d, kWrite ? 1 : 0);
}

// dst [Tp, hdp] = scale * rows x[t*ld + 0..hd) for t < T, zero elsewhere.
void pack_rows(float* dst, const float* x, size_t ld, int T, int Tp, int hd, int hdp,
               float scale = 1.0f) {
  for (int t = 0; t < T; ++t) {
    float* row = dst + static_cast<size_t>(t) * hdp;
    const float* src = x + t * ld;
    prefetch_row_ahead(x, ld, t, T, hd);
#pragma omp simd
    for (int d = 0; d < hd; ++d) row[d] = scale * src[d];
    std::memset(row + hd, 0, sizeof(float) * (hdp - hd));
  }
  std::memset(dst + static_cast<size_t>(T) * hdp, 0, sizeof(float) * (Tp - T) * hdp);
}

// dst [nb, hd, kBlock]: dst[(jb*hd + d)*kBlock + c] = rows[(jb*kBlock + c)*hdp + d], from the
// packed (zero-padded) rows [Tp, hdp], so the transpose reads cache-resident data.
void pack_blocks_transposed(float* dst, const float* rows, int nb, int hd, int hdp) {
  for (int jb = 0; jb < nb; ++jb) {
    const float* src = rows + static_cast<size_t>(jb) * kBlock * hdp;
    float* out = dst + static_cast<size_t>(jb) * hd * kBlock;
    for (int c0 = 0; c0 < kBlock; c0 += kLanes)
      for (int d = 0; d < hd; ++d)
        for (int c = c0; c < c0 + kLanes; ++c) out[d * kBlock + c] = src[c * hdp + d];
  }
}

// Keys of a tile that row r (query i0 + r) may see: c < n with j0 + c <= i0 + r.
int visible_keys(int i0, int r, int j0) {
  return std::clamp(i0 + r - j0 + 1, 0, kBlock);
}

// K ranges of the causal products on a (query block i0, key block j0) tile, for a register
// block of C rows [r0, r0 + rows):
//  - C rows are queries, K runs over keys (P @ V, dS @ K): keys up to the block's last query;
//  - C rows are keys, K runs over queries (P^T @ dout, dS^T @ q): queries from the first key on.
struct KeysOfQueries {
  int i0, j0;
  std::pair<int, int> operator()(int r0, int rows) const { return {0, i0 + r0 + rows - j0}; }
};
struct QueriesOfKeys {
  int i0, j0;
  std::pair<int, int> operator()(int r0, int) const { return {j0 + r0 - i0, kBlock}; }
};

// Row r of a tile: keys past the visible ones become -inf (probability exactly 0).
void mask_row(float* row, int n) {
  std::fill(row + n, row + kBlock, -kInf);
}

// max over a row of kBlock floats, in native vectors (GCC's `omp simd reduction(max)` stalls
// on a store-forwarding round trip per row here).
float row_max_of(const float* row) {
  NativeVec m = load_native(row);
  for (int j = kNativeLanes; j < kBlock; j += kNativeLanes) {
    const NativeVec x = load_native(row + j);
    m = x > m ? x : m;
  }
  return horizontal_max_native(m);
}

// row = exp(row - shift) over kBlock floats; returns the row's sum as lanes (summed by the
// caller when it needs the scalar). In native vectors: GCC leaves fast_exp<float> scalar (with
// branches) in an `omp simd` loop here.
NativeVec exp_row(float* row, float shift) {
  const NativeVec shift_v = broadcast_native(shift);
  NativeVec s{};
  for (int j = 0; j < kBlock; j += kNativeLanes) {
    const NativeVec p = fast_exp(load_native(row + j) - shift_v);
    store_native(row + j, p);
    s += p;
  }
  return s;
}

// The online softmax step of one query block against one key tile: s holds the tile's
// (scaled) scores and becomes exp(s - new max) (0 on masked keys); o rows are rescaled to the
// new max and m, l (running max, and the running sum kept as lanes: l[r * kNativeLanes ..])
// updated.
void online_softmax_tile(float* s, float* o, float* m, float* l, int i0, int j0, int hdp) {
  for (int r = 0; r < kBlock; ++r) {
    float* row = s + r * kBlock;
    mask_row(row, visible_keys(i0, r, j0));
    const float m_new = std::max(m[r], row_max_of(row));
    const NativeVec sum = exp_row(row, m_new);
    const float alpha = fast_exp(m[r] - m_new);  // 0 on the first tile (m = -inf)
    float* lr = l + r * kNativeLanes;
    store_native(lr, load_native(lr) * alpha + sum);
    m[r] = m_new;
    if (alpha != 1.0f) {
      float* orow = o + r * hdp;
#pragma omp simd
      for (int d = 0; d < hdp; ++d) orow[d] *= alpha;
    }
  }
}

// p = exp(s - lse[r]) on visible keys, 0 elsewhere (in place).
void recompute_probabilities(float* s, const float* lse, int i0, int j0) {
  for (int r = 0; r < kBlock; ++r) {
    float* row = s + r * kBlock;
    mask_row(row, visible_keys(i0, r, j0));
    const float l = lse[i0 + r];
    exp_row(row, l);
  }
}

// dp becomes dS = p * (dp - delta[r]); 0 where p is (dp past the diagonal may be stale).
void softmax_backward_tile(float* dp, const float* p, const float* delta, int i0) {
  for (int r = 0; r < kBlock; ++r) {
    const float d = delta[i0 + r];
    float* x = dp + r * kBlock;
    const float* pr = p + r * kBlock;
#pragma omp simd
    for (int j = 0; j < kBlock; ++j) x[j] = pr[j] == 0.0f ? 0.0f : pr[j] * (x[j] - d);
  }
}

// C [kBlock, kBlock] = a_rows[i0..] @ blocks[jb] (K = hd): the scores (q k^T) or dP (dout v^T)
// of a tile. On the diagonal tile (i0 = j0) each register block of rows computes only the
// 16-column groups up to its last row's key; the columns after are left as they were (the
// callers mask them: -inf scores, zero probabilities).
void key_products(const FlashWorkspace& w, const float* a_rows, const float* blocks, int i0, int jb,
                  float* c) {
  const TileA a{a_rows + static_cast<size_t>(i0) * w.hdp, static_cast<size_t>(w.hdp), 1};
  const float* b = blocks + static_cast<size_t>(jb) * w.hd * kBlock;
  if (i0 != jb * kBlock) {
    tile_gemm(kBlock, kBlock, w.hd, a, b, kBlock, c, kBlock, false, FullK{});
    return;
  }
  constexpr int step = tile_rows_for(kBlock);  // the register block's rows on a full tile
  for (int r0 = 0; r0 < kBlock; r0 += step) {
    const int rows = std::min(step, kBlock - r0);
    const int cols = std::min(kBlock, (r0 + rows + kLanes - 1) / kLanes * kLanes);
    tile_gemm(rows, cols, w.hd, TileA{a.p + r0 * a.row, a.row, 1}, b, kBlock, c + r0 * kBlock,
              kBlock, false, FullK{});
  }
}

// Rows t in [first, last), packed [., hdp] from row `first` on, times `scale` into dst rows t
// (stride ld, hd columns).
void unpack_rows(float* dst, size_t ld, const float* rows, int first, int last, int hd, int hdp,
                 float scale = 1.0f) {
  for (int t = first; t < last; ++t) {
    const float* src = rows + static_cast<size_t>(t - first) * hdp;
    float* out = dst + t * ld;
    prefetch_row_ahead<true>(dst, ld, t, last, hd);
#pragma omp simd
    for (int d = 0; d < hd; ++d) out[d] = scale * src[d];
  }
}

}  // namespace

FlashWorkspace::FlashWorkspace(int T, int hd, int g)
    : T(T),
      hd(hd),
      g(g),
      hdp(round_up(hd, kLanes)),
      nb((T + kBlock - 1) / kBlock),
      Tp(nb * kBlock) {
  const size_t rows = static_cast<size_t>(Tp) * hdp, blocks = static_cast<size_t>(Tp) * hd,
               tile = static_cast<size_t>(kBlock) * kBlock,
               out_tile = static_cast<size_t>(kBlock) * hdp;
  // Every piece is a whole number of 16-float vectors (64 bytes), so each stays aligned.
  const size_t floats = 2 * rows + 2 * blocks + 3 * g * rows + 2 * static_cast<size_t>(g) * Tp +
                        2 * tile + 2 * out_tile + kBlock + kBlock * kNativeLanes;
  const size_t bytes = floats * sizeof(float);
  memory_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!memory_)
    fail("attention: out of memory allocating a " + std::to_string(bytes) + "-byte workspace");
  float* p = memory_.get();
  const auto take = [&p](size_t n) { return std::exchange(p, p + n); };
  k_rows = take(rows);
  k_blocks = take(blocks);
  v_rows = take(rows);
  v_blocks = take(blocks);
  q_rows = take(g * rows);
  dout_rows = take(g * rows);
  dq_rows = take(g * rows);
  delta = take(static_cast<size_t>(g) * Tp);
  lse = take(static_cast<size_t>(g) * Tp);
  s_tile = take(tile);
  dp_tile = take(tile);
  o_tile = take(out_tile);
  dv_tile = take(out_tile);
  row_max = take(kBlock);
  row_sum = take(kBlock * kNativeLanes);
}

void FlashWorkspace::Free::operator()(float* p) const {
  std::free(p);
}

std::vector<std::unique_ptr<FlashWorkspace>> make_flash_workspaces(int T, int hd, int g) {
  std::vector<std::unique_ptr<FlashWorkspace>> workspaces;
  for (int t = 0; t < omp_get_max_threads(); ++t)
    workspaces.push_back(std::make_unique<FlashWorkspace>(T, hd, g));
  return workspaces;
}

void flash_forward_head(FlashWorkspace& w, const float* q, const float* k, const float* v,
                        size_t ld, float scale, float* out, size_t ldo, float* lse) {
  const int T = w.T, hd = w.hd, hdp = w.hdp;
  pack_rows(w.q_rows, q, ld, T, w.Tp, hd, hdp, scale);
  pack_rows(w.k_rows, k, ld, T, w.Tp, hd, hdp);
  pack_blocks_transposed(w.k_blocks, w.k_rows, w.nb, hd, hdp);
  pack_rows(w.v_rows, v, ld, T, w.Tp, hd, hdp);
  float *o = w.o_tile, *m = w.row_max, *l = w.row_sum;
  for (int ib = 0; ib < w.nb; ++ib) {
    const int i0 = ib * kBlock;
    std::fill(o, o + kBlock * hdp, 0.0f);
    std::fill(m, m + kBlock, -kInf);
    std::fill(l, l + kBlock * kNativeLanes, 0.0f);
    for (int jb = 0; jb <= ib; ++jb) {
      const int j0 = jb * kBlock;
      key_products(w, w.q_rows, w.k_blocks, i0, jb, w.s_tile);
      online_softmax_tile(w.s_tile, o, m, l, i0, j0, hdp);
      // o += p @ v[j0..]
      tile_gemm(kBlock, hdp, kBlock, TileA{w.s_tile, kBlock, 1},
                w.v_rows + static_cast<size_t>(j0) * hdp, hdp, o, hdp, true, KeysOfQueries{i0, j0});
    }
    const int rows = std::min(kBlock, T - i0);
    for (int r = 0; r < rows; ++r) {
      const float l_r = horizontal_sum_native(load_native(l + r * kNativeLanes));
      const float inv = 1.0f / l_r;
      float* dst = out + (i0 + r) * ldo;
      prefetch_row_ahead<true>(out, ldo, i0 + r, i0 + rows, hd);
      const float* src = o + r * hdp;
#pragma omp simd
      for (int d = 0; d < hd; ++d) dst[d] = src[d] * inv;
      lse[i0 + r] = m[r] + std::log(l_r);
    }
  }
}

namespace {

// Packs query head i of a group: scaled queries, dout, delta = rowsum(dout * out), lse with
// +inf padding; zeroes its dq accumulator.
void pack_query_head(FlashWorkspace& w, const FlashGroup& x, int i, float scale) {
  const int T = w.T, hd = w.hd, hdp = w.hdp;
  const size_t rows = static_cast<size_t>(w.Tp) * hdp;
  pack_rows(w.q_rows + i * rows, x.q + i * x.q_head, x.ld, T, w.Tp, hd, hdp, scale);
  pack_rows(w.dout_rows + i * rows, x.dout + i * x.o_head, x.ldo, T, w.Tp, hd, hdp);
  std::fill(w.dq_rows + i * rows, w.dq_rows + (i + 1) * rows, 0.0f);
  float* delta = w.delta + static_cast<size_t>(i) * w.Tp;
  float* lse = w.lse + static_cast<size_t>(i) * w.Tp;
  for (int t = 0; t < w.Tp; ++t) {
    if (t >= T) {
      delta[t] = 0.0f;
      lse[t] = kInf;
      continue;
    }
    const float* o = x.out + i * x.o_head + t * x.ldo;
    const float* dy = x.dout + i * x.o_head + t * x.ldo;
    prefetch_row_ahead(x.out + i * x.o_head, x.ldo, t, T, hd);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int d = 0; d < hd; ++d) sum += o[d] * dy[d];
    delta[t] = sum;
    lse[t] = x.lse[static_cast<size_t>(i) * T + t];
  }
}

// One (query block, key block) tile of query head i: dv and dk accumulate into the workspace's
// key-block tiles, dq into the head's accumulator rows.
void backward_tile(FlashWorkspace& w, int i, int ib, int jb) {
  const int hdp = w.hdp, i0 = ib * kBlock, j0 = jb * kBlock;
  const size_t rows = static_cast<size_t>(w.Tp) * hdp, qrow = static_cast<size_t>(i0) * hdp;
  const float* q = w.q_rows + i * rows + qrow;
  const float* dy = w.dout_rows + i * rows + qrow;
  float* p = w.s_tile;
  float* ds = w.dp_tile;
  key_products(w, w.q_rows + i * rows, w.k_blocks, i0, jb, p);
  recompute_probabilities(p, w.lse + static_cast<size_t>(i) * w.Tp, i0, j0);
  // dv[j0..] += p^T @ dout[i0..]
  tile_gemm(kBlock, hdp, kBlock, TileA{p, 1, kBlock}, dy, hdp, w.dv_tile, hdp, true,
            QueriesOfKeys{i0, j0});
  // dP = dout[i0..] @ v[j0..]^T, then dS = p * (dP - delta)
  key_products(w, w.dout_rows + i * rows, w.v_blocks, i0, jb, ds);
  softmax_backward_tile(ds, p, w.delta + static_cast<size_t>(i) * w.Tp, i0);
  // dk[j0..] += dS^T @ (scale * q[i0..]);  dq[i0..] += dS @ k[j0..] (scaled at the end)
  tile_gemm(kBlock, hdp, kBlock, TileA{ds, 1, kBlock}, q, hdp, w.o_tile, hdp, true,
            QueriesOfKeys{i0, j0});
  tile_gemm(kBlock, hdp, kBlock, TileA{ds, kBlock, 1}, w.k_rows + static_cast<size_t>(j0) * hdp,
            hdp, w.dq_rows + i * rows + qrow, hdp, true, KeysOfQueries{i0, j0});
}

}  // namespace

void flash_backward_group(FlashWorkspace& w, const FlashGroup& x, float scale) {
  const int T = w.T, hd = w.hd, hdp = w.hdp;
  pack_rows(w.k_rows, x.k, x.ld, T, w.Tp, hd, hdp);
  pack_blocks_transposed(w.k_blocks, w.k_rows, w.nb, hd, hdp);
  pack_rows(w.v_rows, x.v, x.ld, T, w.Tp, hd, hdp);
  pack_blocks_transposed(w.v_blocks, w.v_rows, w.nb, hd, hdp);
  for (int i = 0; i < w.g; ++i) pack_query_head(w, x, i, scale);
  float* dk = w.o_tile;
  for (int jb = 0; jb < w.nb; ++jb) {
    std::fill(dk, dk + kBlock * hdp, 0.0f);
    std::fill(w.dv_tile, w.dv_tile + kBlock * hdp, 0.0f);
    for (int i = 0; i < w.g; ++i)
      for (int ib = jb; ib < w.nb; ++ib) backward_tile(w, i, ib, jb);
    const int j0 = jb * kBlock, j1 = std::min(T, j0 + kBlock);
    unpack_rows(x.dk, x.ld, dk, j0, j1, hd, hdp);
    unpack_rows(x.dv, x.ld, w.dv_tile, j0, j1, hd, hdp);
  }
  const size_t rows = static_cast<size_t>(w.Tp) * hdp;
  for (int i = 0; i < w.g; ++i)
    unpack_rows(x.dq + i * x.q_head, x.ld, w.dq_rows + i * rows, 0, T, hd, hdp, scale);
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
