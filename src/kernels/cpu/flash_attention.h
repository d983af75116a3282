// Flash-style causal attention of one head (forward) or one key/value head with its g query
// heads (backward) on the CPU: the building block of attention.cpp (multi-head, qkv rows
// [3, NH, hd]) and attention_gqa.cpp (grouped-query, rows [KV, g+2, hd]). Both layouts reach a
// head's rows through a base pointer and a row stride.
//
// The T x T probabilities never exist in memory: the forward walks key blocks with an online
// softmax and saves each row's log-sum-exp; the backward recomputes the probabilities of one
// 64 x 64 tile at a time from it (FlashAttention-2's scheme). All products are tile_gemm.h
// register-blocked micro-kernels on packed, cache-resident tiles, and the causal triangle is
// skipped tile by tile (and row block by row block inside the diagonal tiles).
//
// Every function runs serially on one thread: the callers run them in their own OpenMP region,
// one FlashWorkspace per thread. Memory per thread is O(T * hd * g), never O(T^2).
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include <cstddef>
#include <memory>
#include <vector>

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

// Per-thread packed operands and tiles (64-byte aligned, zero-padded to whole blocks).
class FlashWorkspace {
 public:
  // For g query heads per key/value head (the forward uses g = 1). Throws shardlm::Error naming
  // the size when out of memory.
  FlashWorkspace(int T, int hd, int g);

  const int T, hd, g, hdp, nb, Tp;  // hdp: hd in whole vectors; nb blocks of Tp = nb * kBlock
  float* k_rows;                    // [Tp, hdp]       keys (row-major)
  float* k_blocks;                  // [nb, hd, kBlock] keys transposed, block by block
  float* v_rows;                    // [Tp, hdp]       values
  float* v_blocks;                  // [nb, hd, kBlock] values transposed
  float* q_rows;                    // [g, Tp, hdp]    queries times the softmax scale
  float* dout_rows;                 // [g, Tp, hdp]
  float* dq_rows;                   // [g, Tp, hdp]    dq accumulators
  float* delta;                     // [g, Tp]         rowsum(dout * out)
  float* lse;                       // [g, Tp]         log-sum-exp, +inf on padding rows
  float* s_tile;                    // [kBlock, kBlock] scores, then probabilities
  float* dp_tile;                   // [kBlock, kBlock] dP, then dS
  float* o_tile;                    // [kBlock, hdp]   forward output accumulator / dk accumulator
  float* dv_tile;                   // [kBlock, hdp]
  float* row_max;                   // [kBlock]
  float* row_sum;                   // [kBlock, native lanes]: running sums, lane by lane

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> memory_;
};

// One workspace per OpenMP thread (omp_get_max_threads()), allocated outside any parallel
// region so that a failure throws normally.
std::vector<std::unique_ptr<FlashWorkspace>> make_flash_workspaces(int T, int hd, int g);

// Row t of q, k, v at q + t*ld (likewise k, v); of out at out + t*ldo.
// out = causal softmax(scale * q k^T) @ v; lse[t] = log sum_{j<=t} exp(scale * q_t . k_j).
void flash_forward_head(FlashWorkspace& w, const float* q, const float* k, const float* v,
                        size_t ld, float scale, float* out, size_t ldo, float* lse /*[T]*/);

// One key/value head and its g query heads; query head i's rows at q + i*q_head (+ t*ld), its
// output and output gradient at out/dout + i*o_head (+ t*ldo), its lse at lse + i*T.
struct FlashGroup {
  const float *q, *k, *v;
  size_t ld, q_head;
  const float *out, *dout;
  size_t ldo, o_head;
  const float* lse;
  float *dq, *dk, *dv;  // laid out as q, k, v
};

// dq (per query head), dk and dv (summed over the g query heads) written.
void flash_backward_group(FlashWorkspace& w, const FlashGroup& x, float scale);

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
