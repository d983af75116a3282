// One head's causal softmax attention on the CPU, the building block of attention.cpp
// (multi-head, qkv rows [3, NH, hd]) and attention_gqa.cpp (grouped-query, qkv rows
// [KV, g+2, hd]). Both layouts reach a head's rows through a base pointer and a row stride, so
// the packing, micro-kernels and softmax live here once (see attention_head.cpp).
//
// Every function works on one head of one sequence of T positions, serially: the callers run
// them inside their own OpenMP region, one HeadWorkspace per thread.
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include <cstddef>
#include <memory>
#include <vector>

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

// Per-thread packed operands of one head (padded, contiguous, 64-byte aligned).
class HeadWorkspace {
 public:
  HeadWorkspace(int T, int hd);  // throws shardlm::Error naming the size when out of memory

  const int T, hd, hdp, Tp, rows_padded;
  float* rows_a;      // [rows_padded, hdp]
  float* rows_b;      // [rows_padded, hdp]
  float* rows_c;      // [rows_padded, hdp]
  float* transposed;  // [hd, Tp]
  float* score_tile;  // [kScoreRows, Tp]
  float* out_tile;    // [kWeightedRows, hdp]

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> memory_;
};

// One workspace per OpenMP thread (omp_get_max_threads()), allocated outside any parallel
// region so that a failure throws normally.
std::vector<std::unique_ptr<HeadWorkspace>> make_workspaces(int T, int hd);

// Row t of q, k and v starts at q + t*ld (likewise k, v); row t of out at out + t*ldo.
// p [T,T] = causal softmax(scale * q k^T), exactly 0 above the diagonal; out = p @ v.
void head_attention_forward(HeadWorkspace& w, const float* q, const float* k, const float* v,
                            size_t ld, float scale, float* p /*[T,T]*/, float* out, size_t ldo);

// From the forward's p and the output gradient dy (row stride ldy):
// ds [T,T] = dS = p * (dP - rowsum(p * dP)) with dP = dy v^T (0 above the diagonal);
// dq = scale * dS @ k, and, unless dk and dv are null, dk = scale * dS^T @ q, dv = p^T @ dy.
// dq, dk, dv are written with row stride ld.
void head_attention_backward(HeadWorkspace& w, const float* q, const float* k, const float* v,
                             size_t ld, const float* dy, size_t ldy, const float* p, float scale,
                             float* ds /*[T,T]*/, float* dq, float* dk, float* dv);

// The key-side gradients of one query head on key rows [j0, j1): dk = scale * dS^T @ q and
// dv = p^T @ dy, written (accumulate = false) or added (true) with row stride ld. Key j only
// receives from queries t >= j, so rows j0.. of q and dy are all this reads.
void head_key_gradients(HeadWorkspace& w, const float* q, size_t ld, const float* dy, size_t ldy,
                        const float* p /*[T,T]*/, const float* ds /*[T,T]*/, float scale, int j0,
                        int j1, bool accumulate, float* dk, float* dv);

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
