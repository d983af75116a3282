#include "model/llama/family.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "model/init.h"
#include "model/llama/decoder.h"
#include "model/llama/rope.h"
#include "model/llama/stage.h"
#include "model/transformer_family.h"
#include "model/vocab_parallel.h"

namespace shardlm {

namespace {

// Llama 3.1's published rope_scaling (rope_type llama3; original context 8192).
ModelConfig with_llama3_rope(ModelConfig c, double factor) {
  c.rope_scaling = "llama3";
  c.rope_scaling_factor = factor;
  c.rope_scaling_low_freq_factor = 1.0;
  c.rope_scaling_high_freq_factor = 4.0;
  c.rope_scaling_original_max_position_embeddings = 8192;
  return c;
}

ModelConfig llama(int L, int H, int KV, int C, int F, int V, int T, double theta, bool tied) {
  ModelConfig c;
  c.family = "llama";
  c.n_layer = L;
  c.n_head = H;
  c.n_kv_head = KV;
  c.n_embd = C;
  c.intermediate_size = F;
  c.vocab_size = V;
  c.max_seq_len = T;
  c.rope_theta = theta;
  c.tie_embeddings = tied ? 1 : 0;
  return c;
}

class LlamaFamily final : public TransformerFamily {
 public:
  LlamaFamily()
      : TransformerFamily({make_llama_stage, llama_activation_footprint, make_llama_decoder}) {}

  std::string name() const override { return "llama"; }

  // Published shapes (config.json of each model), rope_scaling included: factor 32 for the
  // 3.2 models, 8 for 3.1 (low 1, high 4, original context 8192 for all three).
  std::vector<std::pair<std::string, ModelConfig>> presets() const override {
    ModelConfig smollm = llama(30, 9, 3, 576, 1536, 49152, 8192, 100000, true);
    return {
        {"llama-tiny", llama(2, 4, 2, 128, 344, 8192, 256, 10000, false)},
        {"smollm2-135m", smollm},
        {"llama-3.2-1b",
         with_llama3_rope(llama(16, 32, 8, 2048, 8192, 128256, 131072, 500000, true), 32)},
        {"llama-3.2-3b",
         with_llama3_rope(llama(28, 24, 8, 3072, 8192, 128256, 131072, 500000, true), 32)},
        {"llama-3-8b", llama(32, 32, 8, 4096, 14336, 128256, 8192, 500000, false)},
        {"llama-3-70b", llama(80, 64, 8, 8192, 28672, 128256, 8192, 500000, false)},
        {"llama-3.1-405b",
         with_llama3_rope(llama(126, 128, 8, 16384, 53248, 128256, 131072, 500000, false), 8)},
    };
  }

  void validate(const ModelConfig& c) const override {
    auto bad = [](const std::string& why) { fail("invalid model config: " + why); };
    const int kv = c.kv_heads();
    if (kv <= 0 || c.n_head % kv != 0)
      bad("n_head (" + std::to_string(c.n_head) + ") must be a multiple of n_kv_head (" +
          std::to_string(c.n_kv_head) + ")");
    if (c.head_dim() % 2 != 0)
      bad("head_dim " + std::to_string(c.head_dim()) + " (n_embd / n_head) must be even for RoPE");
    if (c.intermediate_size <= 0)
      bad("intermediate_size must be > 0, got " + std::to_string(c.intermediate_size));
    if (!(c.rope_theta > 0)) bad("rope_theta must be > 0");
    if (!(c.norm_eps > 0)) bad("norm_eps must be > 0");
    if (c.tie_embeddings != 0 && c.tie_embeddings != 1)
      bad("tie_embeddings must be 0 or 1, got " + std::to_string(c.tie_embeddings));
    validate_rope_scaling(c);
  }

  TensorPlan tensor_plan(const ModelConfig& c) const override {
    const int64_t C = c.n_embd, hd = c.head_dim(), KV = c.kv_heads(), g = c.n_head / KV,
                  F = c.intermediate_size, Vp = c.padded_vocab();
    constexpr int kRep = TensorSpec::kReplicated;
    TensorPlan plan;
    auto add = [&](std::string name, std::vector<int64_t> shape, int split, StagePlacement where,
                   int layer = -1) {
      const bool decay = shape.size() >= 2;  // matrices and embeddings; norms are vectors
      plan.push_back({std::move(name), std::move(shape), split, decay, where, layer, false});
    };
    add("embed_tokens", {Vp, C}, 0, StagePlacement::kFirstStage);
    plan.back().tied_to_last_stage = c.tie_embeddings == 1;
    for (int l = 0; l < c.n_layer; ++l) {
      auto block = [&](const char* suffix, std::vector<int64_t> shape, int split) {
        add(layer_param_name(l, suffix), std::move(shape), split, StagePlacement::kLayer, l);
      };
      block("input_norm.weight", {C}, kRep);
      block("attn.qkv.weight", {KV, g + 2, hd, C}, 0);
      block("attn.o_proj.weight", {C, c.n_head * hd}, 1);
      block("post_attn_norm.weight", {C}, kRep);
      block("mlp.gate_up.weight", {2, F, C}, 1);
      block("mlp.down.weight", {C, F}, 1);
    }
    add("norm.weight", {C}, kRep, StagePlacement::kLastStage);
    if (c.tie_embeddings == 0) add("lm_head", {Vp, C}, 0, StagePlacement::kLastStage);
    return plan;
  }

  // Normal(0, 0.02) for matrices and embeddings, residual projections (o_proj, down) scaled by
  // 1/sqrt(2 n_layer), norm weights 1, padded vocabulary rows 0.
  void init_tensor(float* out, const TensorView& view, const ModelConfig& c,
                   uint64_t seed) const override {
    const std::string& name = view.name;
    if (name.ends_with("norm.weight")) return fill_constant(out, view, 1.0f);
    const bool residual = name.ends_with("o_proj.weight") || name.ends_with("mlp.down.weight");
    const float std = residual ? 0.02f / std::sqrt(2.0f * static_cast<float>(c.n_layer)) : 0.02f;
    const bool vocab_rows = name == "embed_tokens" || name == "lm_head";
    fill_counter_normal(out, view, seed, std, vocab_rows ? c.vocab_size : -1);
  }

  int64_t num_parameters(const ModelConfig& c) const override {
    const int64_t C = c.n_embd, V = c.vocab_size, hd = c.head_dim(), H = c.n_head,
                  KV = c.kv_heads(), F = c.intermediate_size;
    const int64_t per_layer = 2 * C + C * (H + 2 * KV) * hd + H * hd * C + 3 * C * F;
    return V * C * (c.tie_embeddings ? 1 : 2) + c.n_layer * per_layer + C;
  }

  // 6 per parameter that takes part in a matmul (the blocks and the head, not the embedding
  // lookup of an untied model) plus attention's 6*L*T*H*hd over the causal half of the scores.
  double flops_per_token(const ModelConfig& c, int T) const override {
    const double lookup = c.tie_embeddings ? 0.0 : static_cast<double>(c.vocab_size) * c.n_embd;
    return 6.0 * (static_cast<double>(num_parameters(c)) - lookup) +
           6.0 * c.n_layer * static_cast<double>(T) * c.n_head * c.head_dim();
  }

  std::string tensor_parallel_problem(const ModelConfig& c, int tp) const override {
    if (c.kv_heads() % tp != 0)
      return "n_kv_head " + std::to_string(c.kv_heads()) +
             " is not divisible by tp (each rank owns whole key/value heads; shardlm does not "
             "replicate them)";
    if (c.intermediate_size % tp != 0)
      return "intermediate_size " + std::to_string(c.intermediate_size) + " is not divisible by tp";
    return vocab_tensor_parallel_problem(c, tp);
  }
};

}  // namespace

const ModelFamily& llama_family() {
  static const LlamaFamily family;
  return family;
}

}  // namespace shardlm
