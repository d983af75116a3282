// One Llama block, written once for training (stage.h) and KV-cached generation (decoder.h);
// they differ only in the attention they pass in.
//
//   resid2 = in + g(o_proj(attention(rope(qkv(rmsnorm_1(in))))))
//   out    = resid2 + g(down(swiglu(gate_up(rmsnorm_2(resid2)))))
//
// qkv and gate_up are column-parallel (f), o_proj and down row-parallel (g sums their partial
// outputs; no biases). Shapes: N = B*T rows, C channels; this TP rank's KVl key/value heads,
// each with g query heads of hd (QKVl = KVl*(g+2)*hd qkv columns, Al = KVl*g*hd attention
// channels) and Fl = F/tp MLP channels.
#pragma once

#include <functional>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/param_layout.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

struct LlamaDims {
  int N;    // rows (tokens)
  int C;    // channels
  int KVl;  // this rank's key/value heads
  int g;    // query heads per key/value head
  int hd;   // head size
  int Fl;   // this rank's MLP channels
  float eps;
  int qkv() const { return KVl * (g + 2) * hd; }
  int attn() const { return KVl * g * hd; }
};

// A block's tensors in a flat buffer (parameters or their gradients): the layer's span of it
// (ModelWeights::layer_params / layer_grads; a ZeRO window holds the layer's elements only).
struct LlamaBlockTensors {
  float *norm1_w, *qkv_w, *o_w, *norm2_w, *gate_up_w, *down_w;
};
LlamaBlockTensors llama_block_tensors(const ParamLayout& layout, FlatSpan flat, int layer);

struct LlamaBlockActs {
  float* norm1;       // [N,C]
  float* norm1_rstd;  // [N]
  float* qkv;         // [N,QKVl]  after RoPE
  float* atty;        // [N,Al]
  float* attproj;     // [N,C]     after the TP sum
  float* resid2;      // [N,C]
  float* norm2;       // [N,C]
  float* norm2_rstd;  // [N]
  float* gate_up;     // [N,2Fl]   gate | up
  float* act;         // [N,Fl]    swiglu
  float* mlp;         // [N,C]     after the TP sum
};

// The attention variant: out [N,Al] from qkv [N,QKVl], RoPE included (it needs positions).
using LlamaAttention = std::function<void(float* out, float* qkv)>;

void llama_block_forward(KernelBackend& be, TensorParallel& tp, const LlamaDims& d,
                         const LlamaBlockTensors& w, LlamaBlockActs& a, const float* in, float* out,
                         const LlamaAttention& attention);

struct LlamaBlockScratch {
  float* dnorm;     // [N,C]
  float* dqkv;      // [N,QKVl]
  float* datty;     // [N,Al]
  float* dgate_up;  // [N,2Fl]
  float* dact;      // [N,Fl]
};

// dqkv [N,QKVl] written from datty [N,Al] and the block's (rotated) qkv, RoPE's backward
// included.
using LlamaAttentionBackward =
    std::function<void(float* dqkv, const float* datty, const float* qkv)>;

// dresid [N,C]: d(out) on entry, d(in) on return. Parameter gradients accumulate into g.
void llama_block_backward(KernelBackend& be, TensorParallel& tp, const LlamaDims& d,
                          const LlamaBlockTensors& w, const LlamaBlockTensors& g,
                          const LlamaBlockActs& a, const float* in, float* dresid,
                          LlamaBlockScratch& s, const LlamaAttentionBackward& attention_backward);

// Selective recomputation (model/recompute.h), before the layer's backward: the attention
// output (and its internals) from the kept, already rotated qkv — `attention_core` must not
// apply RoPE again — and SwiGLU's output from the kept gate | up.
void llama_block_recompute_selective(KernelBackend& be, const LlamaDims& d, LlamaBlockActs& a,
                                     const LlamaAttention& attention_core);

}  // namespace shardlm
