#include "model/gpt2/block.h"

#include "model/vocab_parallel.h"

namespace shardlm {

Gpt2BlockTensors gpt2_block_tensors(const ParamLayout& layout, FlatSpan flat, int layer) {
  auto at = [&](const char* s) {
    return flat.at(layout.get(layer_param_name(layer, s)).flat_offset);
  };
  return {at("ln_1.weight"),      at("ln_1.bias"),          at("attn.c_attn.weight"),
          at("attn.c_attn.bias"), at("attn.c_proj.weight"), at("attn.c_proj.bias"),
          at("ln_2.weight"),      at("ln_2.bias"),          at("mlp.c_fc.weight"),
          at("mlp.c_fc.bias"),    at("mlp.c_proj.weight"),  at("mlp.c_proj.bias")};
}

void gpt2_block_forward(KernelBackend& be, TensorParallel& tp, const Gpt2Dims& d,
                        const Gpt2BlockTensors& w, Gpt2BlockActs& a, const float* in, float* out,
                        const Gpt2Attention& attention) {
  const bool add_row_bias = tp.rank() == 0;  // row-parallel biases: once, before the TP sum
  const size_t NC = static_cast<size_t>(d.N) * d.C;

  be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, in, w.ln1_w, w.ln1_b, d.N, d.C);
  be.matmul_forward(a.qkv, a.ln1, w.qkv_w, w.qkv_b, d.N, d.C, 3 * d.Cl);
  attention(a.atty, a.qkv);
  be.matmul_forward(a.attproj, a.atty, w.attproj_w, add_row_bias ? w.attproj_b : nullptr, d.N, d.Cl,
                    d.C);
  tp.reduce_from_region(a.attproj, NC);
  be.add(a.resid2, in, a.attproj, NC);

  be.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.resid2, w.ln2_w, w.ln2_b, d.N, d.C);
  be.matmul_forward(a.fc, a.ln2, w.fc_w, w.fc_b, d.N, d.C, d.Fl);
  be.gelu_forward(a.fc_gelu, a.fc, static_cast<size_t>(d.N) * d.Fl);
  be.matmul_forward(a.fcproj, a.fc_gelu, w.fcproj_w, add_row_bias ? w.fcproj_b : nullptr, d.N, d.Fl,
                    d.C);
  tp.reduce_from_region(a.fcproj, NC);
  be.add(out, a.resid2, a.fcproj, NC);
}

void gpt2_block_backward(KernelBackend& be, TensorParallel& tp, const Gpt2Dims& d,
                         const Gpt2BlockTensors& w, const Gpt2BlockTensors& g,
                         const Gpt2BlockActs& a, const float* in, float* dresid,
                         Gpt2BlockScratch& s, const Gpt2AttentionBackward& attention_backward) {
  const size_t NC = static_cast<size_t>(d.N) * d.C;
  // MLP: dresid holds d(block output) = d(fcproj) = d(resid2) so far.
  be.matmul_backward(s.dfc_gelu, g.fcproj_w, g.fcproj_b, dresid, a.fc_gelu, w.fcproj_w, d.N, d.Fl,
                     d.C);
  be.gelu_backward(s.dfc, a.fc, s.dfc_gelu, static_cast<size_t>(d.N) * d.Fl);
  be.matmul_backward(s.dln, g.fc_w, g.fc_b, s.dfc, a.ln2, w.fc_w, d.N, d.C, d.Fl);
  tp.copy_to_region_backward(s.dln, NC);
  be.layernorm_backward(dresid, g.ln2_w, g.ln2_b, s.dln, a.resid2, w.ln2_w, a.ln2_mean, a.ln2_rstd,
                        d.N, d.C);

  // Attention: dresid now holds d(resid2) = d(attproj).
  be.matmul_backward(s.datty, g.attproj_w, g.attproj_b, dresid, a.atty, w.attproj_w, d.N, d.Cl,
                     d.C);
  attention_backward(s.dqkv, s.datty, a.qkv);
  be.matmul_backward(s.dln, g.qkv_w, g.qkv_b, s.dqkv, a.ln1, w.qkv_w, d.N, d.C, 3 * d.Cl);
  tp.copy_to_region_backward(s.dln, NC);
  be.layernorm_backward(dresid, g.ln1_w, g.ln1_b, s.dln, in, w.ln1_w, a.ln1_mean, a.ln1_rstd, d.N,
                        d.C);
}

void gpt2_block_recompute_selective(KernelBackend& be, const Gpt2Dims& d, Gpt2BlockActs& a,
                                    const Gpt2Attention& attention) {
  attention(a.atty, a.qkv);
  be.gelu_forward(a.fc_gelu, a.fc, static_cast<size_t>(d.N) * d.Fl);
}

void gpt2_embedding_forward(KernelBackend& be, TensorParallel& tp, float* out,
                            const int32_t* tokens, const float* wte, const float* wpe, int B, int T,
                            int C, int pos0, int vocab_start, int vocab_local) {
  vocab_embedding_forward(be, tp, out, tokens, wte, B * T, C, {vocab_start, vocab_local, 0});
  be.position_embedding_forward(out, wpe + static_cast<size_t>(pos0) * C, B, T, C);
}

}  // namespace shardlm
