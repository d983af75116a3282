// Register-blocked single-thread GEMM on small cache-resident tiles: the inner products of the
// flash attention kernels (flash_attention.cpp). oneDNN's sgemm opens a parallel region per
// call and cannot run inside one (gemm.h); these tiles are 64 x 64 x 64 at most and run inside
// the attention's own OpenMP tasks.
//
//   C[M, N] (+)= A[M, K] @ B[K, N]
//
// B is row-major (row stride ldb) with N a multiple of kLanes; A is read one element at a time
// (a broadcast), at a[r * a_row + k * a_col], so a row-major A (a_col = 1) and a transposed one
// (a_row = 1, e.g. P^T) cost the same. C is row-major (row stride ldc) and padded to N.
//
// The register block is kTileRows rows x kTileVecs 16-float column groups of C (6 x 4 on C tiles
// 64 columns wide with AVX-512: tile_rows_for), sized to the ISA's vector registers (32 zmm
// with AVX-512, 16 ymm with AVX2), so that neither spills.
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "kernels/cpu/native_vec.h"
#include "kernels/cpu/vec16.h"

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

// The register block: kTileRows rows x kTileVecs 16-float column groups of C in native vectors.
#if defined(__AVX512F__)
constexpr int kTileRows = 8;  // 8 x 3 accumulators + 3 B vectors + 1 broadcast = 28 of 32 zmm
constexpr int kTileVecs = 3;  // 16-float column groups per block
#elif defined(__AVX__)
constexpr int kTileRows = 6;  // 6 x 2 accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm
constexpr int kTileVecs = 1;
#else
constexpr int kTileRows = 4;  // 4 x 4 accumulators + 4 B vectors of 16 xmm (spills a little)
constexpr int kTileVecs = 1;
#endif
constexpr int kNativePer16 = kLanes / kNativeLanes;

// The A operand: element (r, k) at p[r * row + k * col].
struct TileA {
  const float* p;
  size_t row, col;
  float at(int r, int k) const { return p[r * row + k * col]; }
};

// One MR x (16*NV floats) register block of C over k in [0, K).
template <int MR, int NV>
inline void tile_block(TileA a, const float* b, size_t ldb, int K, float* c, size_t ldc,
                       bool accumulate) {
  constexpr int V = NV * kNativePer16;  // native vectors per row
  NativeVec acc[MR][V];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      acc[r][v] = accumulate ? load_native(c + r * ldc + v * kNativeLanes) : NativeVec{};
  for (int k = 0; k < K; ++k) {
    NativeVec bv[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) bv[v] = load_native(b + k * ldb + v * kNativeLanes);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const NativeVec x = broadcast_native(a.at(r, k));
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] += x * bv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) store_native(c + r * ldc + v * kNativeLanes, acc[r][v]);
}

// Rows [0, MR) of C over all N columns, NV vectors at a time (one at a time at the end).
template <int MR, int NV>
inline void tile_rows(TileA a, const float* b, size_t ldb, int N, int K, float* c, size_t ldc,
                      bool accumulate) {
  int j = 0;
  for (; j + NV * kLanes <= N; j += NV * kLanes)
    tile_block<MR, NV>(a, b + j, ldb, K, c + j, ldc, accumulate);
  for (; j < N; j += kLanes) tile_block<MR, 1>(a, b + j, ldb, K, c + j, ldc, accumulate);
}

// The rows of C that a tile holds past the last whole register block (fewer than MR).
template <int NV, int MR>
inline void tile_remainder_rows(int rows, TileA a, const float* b, size_t ldb, int N, int K,
                                float* c, size_t ldc, bool accumulate) {
  if constexpr (MR > 0) {
    if (rows == MR) return tile_rows<MR, NV>(a, b, ldb, N, K, c, ldc, accumulate);
    tile_remainder_rows<NV, MR - 1>(rows, a, b, ldb, N, K, c, ldc, accumulate);
  }
}

// tile_gemm (below) with an MR x NV register block.
template <int MR, int NV, typename KRange>
inline void tile_gemm_blocked(int M, int N, int K, TileA a, const float* b, size_t ldb, float* c,
                              size_t ldc, bool accumulate, KRange k_range) {
  for (int r0 = 0; r0 < M; r0 += MR) {
    const int rows = std::min(MR, M - r0);
    auto [k0, k1] = k_range(r0, rows);
    k0 = std::max(k0, 0);
    k1 = std::min(k1, K);
    float* cr = c + r0 * ldc;
    if (k1 <= k0) {  // an all-zero block of A: C keeps (or takes) zero
      if (!accumulate)
        for (int r = 0; r < rows; ++r) std::fill(cr + r * ldc, cr + r * ldc + N, 0.0f);
      continue;
    }
    const TileA ar{a.p + r0 * a.row + k0 * a.col, a.row, a.col};
    const float* br = b + k0 * ldb;
    if (rows == MR)
      tile_rows<MR, NV>(ar, br, ldb, N, k1 - k0, cr, ldc, accumulate);
    else
      tile_remainder_rows<NV, MR - 1>(rows, ar, br, ldb, N, k1 - k0, cr, ldc, accumulate);
  }
}

// Rows per register block for a C of N columns. With AVX-512, C tiles 64 columns wide (the
// attention's 64-key tiles and 64-wide heads) take a 6 x 64 block: 6 x 4 accumulators + 4 B
// vectors + 1 broadcast = 29 of 32 zmm, with no 16-column block left over as 8 x 48 leaves
// (that one does 8 FMAs per 9 loads and bounds the tile by the load ports).
#if defined(__AVX512F__)
constexpr int kWideRows = 6;
constexpr int kWideVecs = 4;
#endif
constexpr int tile_rows_for(int N) {
#if defined(__AVX512F__)
  if (N % (kWideVecs * kLanes) == 0) return kWideRows;
#endif
  (void)N;
  return kTileRows;
}

// C[M, N] (+)= A @ B (N a multiple of kLanes). k_range(r0, rows) may narrow the K range of a
// block of rows [r0, r0 + rows) to [k0, k1) where A is known to be zero elsewhere (the causal
// triangle); C is then as if the full range were summed.
template <typename KRange>
inline void tile_gemm(int M, int N, int K, TileA a, const float* b, size_t ldb, float* c,
                      size_t ldc, bool accumulate, KRange k_range) {
#if defined(__AVX512F__)
  if (tile_rows_for(N) == kWideRows)
    return tile_gemm_blocked<kWideRows, kWideVecs>(M, N, K, a, b, ldb, c, ldc, accumulate, k_range);
#endif
  tile_gemm_blocked<kTileRows, kTileVecs>(M, N, K, a, b, ldb, c, ldc, accumulate, k_range);
}

// The full K range for every row block.
struct FullK {
  std::pair<int, int> operator()(int, int) const { return {0, 1 << 30}; }
};

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
