// The Llama family (transformers' LlamaForCausalLM): RMSNorm, SwiGLU, RoPE (rotate-half),
// grouped-query attention, no biases, untied head unless tie_embeddings.
//
// Tensor plan (weight = [out, in]; H query heads, KV key/value heads, g = H/KV, hd = C/H,
// F = intermediate_size):
//   embed_tokens              [Vp, C]              vocab-parallel (first stage)
//   h.L.input_norm.weight     [C]                  replicated
//   h.L.attn.qkv.weight       [KV, g+2, hd, C]     split over KV groups: a rank owns KV/tp
//                                                  groups, each its g query heads + k + v
//                                                  (one rectangle; transformers' q/k/v rows
//                                                  are a permutation of it)
//   h.L.attn.o_proj.weight    [C, H*hd]            row-parallel: columns of the rank's heads
//   h.L.post_attn_norm.weight [C]                  replicated
//   h.L.mlp.gate_up.weight    [2, F, C]            column-parallel: rows F/tp of gate and up
//   h.L.mlp.down.weight       [C, F]               row-parallel
//   norm.weight               [C]                  replicated (last stage)
//   lm_head                   [Vp, C]              vocab-parallel (last stage; absent when
//                                                  tied: embed_tokens is then the head)
// Tensor parallelism needs tp | n_kv_head: kv heads are not replicated across ranks (a rank
// that held a copy would need its gradient summed with the other copies' too, a second kind
// of tied tensor); the refusal says so.
#pragma once

#include "model/family.h"

namespace shardlm {

const ModelFamily& llama_family();

}  // namespace shardlm
