// One GPT-2 transformer block, written once for training (model/gpt2/stage.h) and KV-cached
// generation (model/gpt2/decoder.h); they differ only in the attention they pass in.
//
//   resid2 = in + g(c_proj(attention(c_attn(ln_1(in)))))
//   out    = resid2 + g(mlp.c_proj(gelu(mlp.c_fc(ln_2(resid2)))))
//
// Tensor parallelism (parallel/tensor_parallel.h): c_attn and c_fc are column-parallel (their
// input is copied to the TP region: f), the c_proj's row-parallel (g sums their partial
// outputs). Row-parallel biases are added once, by TP rank 0, before the sum.
// Shapes: N = B*T rows, C channels, Cl = C/tp attention channels (Hl = NH/tp heads of hd),
// Fl = 4C/tp MLP channels of this TP rank.
#pragma once

#include <functional>

#include "kernels/backend.h"
#include "model/param_layout.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

struct Gpt2Dims {
  int N;   // rows (tokens)
  int C;   // channels
  int Cl;  // this rank's attention channels (Hl * hd)
  int Fl;  // this rank's MLP channels
};

// A block's tensors in a flat buffer (parameters or their gradients): the layer's span of it
// (ModelWeights::layer_params / layer_grads; a ZeRO window holds the layer's elements only).
struct Gpt2BlockTensors {
  float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *attproj_w, *attproj_b;
  float *ln2_w, *ln2_b, *fc_w, *fc_b, *fcproj_w, *fcproj_b;
};
Gpt2BlockTensors gpt2_block_tensors(const ParamLayout& layout, FlatSpan flat, int layer);

// What a block's forward writes (and backward reads). Generation may alias the
// per-sublayer buffers (it keeps nothing for backward).
struct Gpt2BlockActs {
  float* ln1;       // [N,C]
  float* ln1_mean;  // [N]
  float* ln1_rstd;  // [N]
  float* qkv;       // [N,3*Cl]   = [B,T,3,Hl,hd]
  float* atty;      // [N,Cl]     attention output
  float* attproj;   // [N,C]      after the TP sum
  float* resid2;    // [N,C]      residual stream after attention
  float* ln2;       // [N,C]
  float* ln2_mean;  // [N]
  float* ln2_rstd;  // [N]
  float* fc;        // [N,Fl]     pre-GELU
  float* fc_gelu;   // [N,Fl]
  float* fcproj;    // [N,C]      after the TP sum
};

// The attention variant: out [N,Cl] from qkv [N,3*Cl] (causal over a whole sequence in
// training; against the KV cache in generation).
using Gpt2Attention = std::function<void(float* out, const float* qkv)>;

// out [N,C] may equal in (generation updates its residual stream in place).
void gpt2_block_forward(KernelBackend& be, TensorParallel& tp, const Gpt2Dims& d,
                        const Gpt2BlockTensors& w, Gpt2BlockActs& a, const float* in, float* out,
                        const Gpt2Attention& attention);

// Backward scratch, shared by all layers and micro-batches.
struct Gpt2BlockScratch {
  float* dln;       // [N,C]
  float* dqkv;      // [N,3*Cl]
  float* datty;     // [N,Cl]
  float* dfc;       // [N,Fl]
  float* dfc_gelu;  // [N,Fl]
};

// The attention's backward: dqkv [N,3*Cl] written from datty [N,Cl] and the block's qkv.
using Gpt2AttentionBackward =
    std::function<void(float* dqkv, const float* datty, const float* qkv)>;

// dresid [N,C]: d(out) on entry, d(in) on return. Parameter gradients accumulate into g.
void gpt2_block_backward(KernelBackend& be, TensorParallel& tp, const Gpt2Dims& d,
                         const Gpt2BlockTensors& w, const Gpt2BlockTensors& g,
                         const Gpt2BlockActs& a, const float* in, float* dresid,
                         Gpt2BlockScratch& s, const Gpt2AttentionBackward& attention_backward);

// Selective recomputation (model/recompute.h), before the layer's backward: the attention
// output (and its internals, via `attention`) from the kept qkv, GELU's output from fc.
void gpt2_block_recompute_selective(KernelBackend& be, const Gpt2Dims& d, Gpt2BlockActs& a,
                                    const Gpt2Attention& attention);

// Token + position embedding of rows at positions pos0..pos0+T-1 of B sequences:
// out[b,t,:] = wte[tokens[b,t]] (summed over the vocab-parallel shards) + wpe[pos0 + t].
void gpt2_embedding_forward(KernelBackend& be, TensorParallel& tp, float* out /*[B,T,C]*/,
                            const int32_t* tokens /*[B,T] backend*/, const float* wte /*[Vl,C]*/,
                            const float* wpe /*[max_seq,C]*/, int B, int T, int C, int pos0,
                            int vocab_start, int vocab_local);

}  // namespace shardlm
