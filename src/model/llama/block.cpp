#include "model/llama/block.h"

namespace shardlm {

LlamaBlockTensors llama_block_tensors(const ParamLayout& layout, FlatSpan flat, int layer) {
  auto at = [&](const char* s) {
    return flat.at(layout.get(layer_param_name(layer, s)).flat_offset);
  };
  return {at("input_norm.weight"),     at("attn.qkv.weight"),    at("attn.o_proj.weight"),
          at("post_attn_norm.weight"), at("mlp.gate_up.weight"), at("mlp.down.weight")};
}

void llama_block_forward(KernelBackend& be, TensorParallel& tp, const LlamaDims& d,
                         const LlamaBlockTensors& w, LlamaBlockActs& a, const float* in, float* out,
                         const LlamaAttention& attention) {
  const size_t NC = static_cast<size_t>(d.N) * d.C;
  be.rmsnorm_forward(a.norm1, a.norm1_rstd, in, w.norm1_w, d.N, d.C, d.eps);
  be.matmul_forward(a.qkv, a.norm1, w.qkv_w, nullptr, d.N, d.C, d.qkv());
  attention(a.atty, a.qkv);
  be.matmul_forward(a.attproj, a.atty, w.o_w, nullptr, d.N, d.attn(), d.C);
  tp.reduce_from_region(a.attproj, NC);
  be.add(a.resid2, in, a.attproj, NC);

  be.rmsnorm_forward(a.norm2, a.norm2_rstd, a.resid2, w.norm2_w, d.N, d.C, d.eps);
  be.matmul_forward(a.gate_up, a.norm2, w.gate_up_w, nullptr, d.N, d.C, 2 * d.Fl);
  be.swiglu_forward(a.act, a.gate_up, d.N, d.Fl);
  be.matmul_forward(a.mlp, a.act, w.down_w, nullptr, d.N, d.Fl, d.C);
  tp.reduce_from_region(a.mlp, NC);
  be.add(out, a.resid2, a.mlp, NC);
}

void llama_block_backward(KernelBackend& be, TensorParallel& tp, const LlamaDims& d,
                          const LlamaBlockTensors& w, const LlamaBlockTensors& g,
                          const LlamaBlockActs& a, const float* in, float* dresid,
                          LlamaBlockScratch& s, const LlamaAttentionBackward& attention_backward) {
  const size_t NC = static_cast<size_t>(d.N) * d.C;
  // MLP: dresid holds d(block output) = d(mlp) = d(resid2) so far.
  be.matmul_backward(s.dact, g.down_w, nullptr, dresid, a.act, w.down_w, d.N, d.Fl, d.C);
  be.swiglu_backward(s.dgate_up, a.gate_up, s.dact, d.N, d.Fl);
  be.matmul_backward(s.dnorm, g.gate_up_w, nullptr, s.dgate_up, a.norm2, w.gate_up_w, d.N, d.C,
                     2 * d.Fl);
  tp.copy_to_region_backward(s.dnorm, NC);
  be.rmsnorm_backward(dresid, g.norm2_w, s.dnorm, a.resid2, w.norm2_w, a.norm2_rstd, d.N, d.C);

  // Attention: dresid now holds d(resid2) = d(attproj).
  be.matmul_backward(s.datty, g.o_w, nullptr, dresid, a.atty, w.o_w, d.N, d.attn(), d.C);
  attention_backward(s.dqkv, s.datty, a.qkv);
  be.matmul_backward(s.dnorm, g.qkv_w, nullptr, s.dqkv, a.norm1, w.qkv_w, d.N, d.C, d.qkv());
  tp.copy_to_region_backward(s.dnorm, NC);
  be.rmsnorm_backward(dresid, g.norm1_w, s.dnorm, in, w.norm1_w, a.norm1_rstd, d.N, d.C);
}

void llama_block_recompute_selective(KernelBackend& be, const LlamaDims& d, LlamaBlockActs& a,
                                     const LlamaAttention& attention_core) {
  attention_core(a.atty, a.qkv);
  be.swiglu_forward(a.act, a.gate_up, d.N, d.Fl);
}

}  // namespace shardlm
