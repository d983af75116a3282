// The GPT-2 family: LayerNorm, GELU (tanh), learned positions, fused QKV, tied embeddings.
//
// Tensor plan (PyTorch Linear convention, weight = [out, in]; y = x W^T + b):
//   wte                      [Vp, C]          vocab-parallel: TP rank r owns rows r*Vp/tp..
//                                             (first stage; the last stage holds a tied copy)
//   wpe                      [max_seq, C]     replicated over TP
//   h.L.ln_1.weight/bias     [C]              replicated
//   h.L.attn.c_attn.weight   [3, H, hd, C]    column-parallel over heads: rank owns H/tp heads
//   h.L.attn.c_attn.bias     [3, H, hd]       (q rows of all heads, then k, then v)
//   h.L.attn.c_proj.weight   [C, C]           row-parallel: rank owns columns r*C/tp..
//   h.L.attn.c_proj.bias     [C]              replicated
//   h.L.ln_2.weight/bias     [C]              replicated
//   h.L.mlp.c_fc.weight      [4C, C]          column-parallel: rank owns rows r*4C/tp..
//   h.L.mlp.c_fc.bias        [4C]
//   h.L.mlp.c_proj.weight    [C, 4C]          row-parallel: rank owns columns r*4C/tp..
//   h.L.mlp.c_proj.bias      [C]              replicated
//   ln_f.weight/bias         [C]              replicated (last stage)
// AdamW decays the tensors of rank >= 2 that are not biases.
#pragma once

#include "model/family.h"

namespace shardlm {

const ModelFamily& gpt2_family();

}  // namespace shardlm
