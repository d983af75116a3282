// The vocab-parallel ends of a language model, shared by every family: the token embedding
// (each TP rank holds rows [start, start+local) of the table; partial lookups are summed) and
// the output head + softmax cross-entropy (each rank computes the logits of its vocabulary rows;
// only per-row maxima and sums cross the TP group, never the full logits).
#pragma once

#include <cstdint>

#include <string>

#include "kernels/backend.h"
#include "model/config.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

// This TP rank's share of the (padded) vocabulary; ids >= vocab_size are padding.
struct VocabShard {
  int start = 0;       // first row
  int local = 0;       // rows
  int vocab_size = 0;  // the real vocabulary
};

// out[n,:] = table[tokens[n]] summed over the TP ranks (tokens: backend memory).
void vocab_embedding_forward(KernelBackend& be, TensorParallel& tp, float* out /*[N,C]*/,
                             const int32_t* tokens /*[N]*/, const float* table /*[Vl,C]*/, int N,
                             int C, const VocabShard& v);

// "padded vocabulary 1024 (vocab_size 1000 rounded up to a multiple of 128) is not divisible
// by tp" when tp ranks cannot split the vocabulary tables, else "".
std::string vocab_tensor_parallel_problem(const ModelConfig& cfg, int tp);

// One micro-batch's buffers of the loss (backend memory).
struct VocabLossBuffers {
  float* logits;   // [N,Vl] (dlogits in place after backward)
  float* row_max;  // [N]
  float* sums;     // [2N]: sum_exp then target_logit (one TP all-reduce)
  float* losses;   // [N]
};

// logits = x @ head^T over this rank's rows, then the vocab-parallel cross-entropy against
// targets [N] (backend memory). Returns the mean loss over the N rows.
float vocab_loss_forward(KernelBackend& be, TensorParallel& tp, VocabLossBuffers& b,
                         const float* x /*[N,C]*/, const float* head /*[Vl,C]*/,
                         const int32_t* targets /*[N]*/, int N, int C, const VocabShard& v);
// From loss_scale * d(mean loss): dx written (summed over TP), dhead +=.
void vocab_loss_backward(KernelBackend& be, TensorParallel& tp, VocabLossBuffers& b,
                         float* dx /*[N,C]*/, float* dhead /*[Vl,C]*/, const float* x,
                         const float* head, const int32_t* targets, float loss_scale, int N, int C,
                         const VocabShard& v);

}  // namespace shardlm
