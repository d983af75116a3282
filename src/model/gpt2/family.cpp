#include "model/gpt2/family.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/hash.h"
#include "model/gpt2/decoder.h"
#include "model/gpt2/stage.h"
#include "model/init.h"
#include "model/transformer_family.h"
#include "model/vocab_parallel.h"

namespace shardlm {

namespace {

class Gpt2Family final : public TransformerFamily {
 public:
  Gpt2Family()
      : TransformerFamily({make_gpt2_stage, gpt2_activation_footprint, make_gpt2_decoder}) {}

  std::string name() const override { return "gpt2"; }

  std::vector<std::pair<std::string, ModelConfig>> presets() const override {
    auto make = [](int L, int H, int C, int V, int T) {
      ModelConfig c;
      c.family = "gpt2";
      c.n_layer = L;
      c.n_head = H;
      c.n_embd = C;
      c.vocab_size = V;
      c.max_seq_len = T;
      return c;
    };
    return {
        {"tiny", make(2, 4, 128, 8192, 256)},  // seconds per step on 2 cores
        {"mini", make(6, 6, 384, 8192, 256)},  // the demo / benchmark model
        {"gpt2", make(12, 12, 768, 50257, 1024)},
        {"gpt2-medium", make(24, 16, 1024, 50257, 1024)},
        {"gpt2-large", make(36, 20, 1280, 50257, 1024)},
        {"gpt2-xl", make(48, 25, 1600, 50257, 1024)},
    };
  }

  // The generic checks cover GPT-2's own fields; the other families' fields must stay unset.
  void validate(const ModelConfig& c) const override {
    const ModelConfig d;
    auto unused = [](const char* key, bool set) {
      if (set) fail(std::string("invalid model config: the gpt2 family has no ") + key);
    };
    unused("n_kv_head (grouped-query attention)", c.n_kv_head != d.n_kv_head);
    unused("intermediate_size (its MLP is 4*n_embd)", c.intermediate_size != d.intermediate_size);
    unused("rope_theta (it has learned positions)", c.rope_theta != d.rope_theta);
    unused("norm_eps (its LayerNorm eps is 1e-5)", c.norm_eps != d.norm_eps);
    unused("tie_embeddings (its head is always tied)", c.tie_embeddings != d.tie_embeddings);
    unused("rope_scaling (it has learned positions)",
           c.rope_scaling != d.rope_scaling || c.rope_scaling_factor != d.rope_scaling_factor ||
               c.rope_scaling_low_freq_factor != d.rope_scaling_low_freq_factor ||
               c.rope_scaling_high_freq_factor != d.rope_scaling_high_freq_factor ||
               c.rope_scaling_original_max_position_embeddings !=
                   d.rope_scaling_original_max_position_embeddings);
  }

  TensorPlan tensor_plan(const ModelConfig& cfg) const override {
    const int64_t C = cfg.n_embd, H = cfg.n_head, hd = cfg.head_dim(), Vp = cfg.padded_vocab();
    constexpr int kRep = TensorSpec::kReplicated;
    TensorPlan plan;
    auto add = [&](std::string name, std::vector<int64_t> shape, int split, StagePlacement where,
                   int layer = -1) {
      const bool bias = name.ends_with(".bias");  // c_attn.bias is [3, H, hd] but a bias
      const bool decay = shape.size() >= 2 && !bias;
      plan.push_back({std::move(name), std::move(shape), split, decay, where, layer, false});
    };
    add("wte", {Vp, C}, 0, StagePlacement::kFirstStage);
    plan.back().tied_to_last_stage = true;  // the LM head
    add("wpe", {cfg.max_seq_len, C}, kRep, StagePlacement::kFirstStage);
    for (int l = 0; l < cfg.n_layer; ++l) {
      auto block = [&](const char* suffix, std::vector<int64_t> shape, int split) {
        add(layer_param_name(l, suffix), std::move(shape), split, StagePlacement::kLayer, l);
      };
      block("ln_1.weight", {C}, kRep);
      block("ln_1.bias", {C}, kRep);
      block("attn.c_attn.weight", {3, H, hd, C}, 1);
      block("attn.c_attn.bias", {3, H, hd}, 1);
      block("attn.c_proj.weight", {C, C}, 1);
      block("attn.c_proj.bias", {C}, kRep);
      block("ln_2.weight", {C}, kRep);
      block("ln_2.bias", {C}, kRep);
      block("mlp.c_fc.weight", {4 * C, C}, 0);
      block("mlp.c_fc.bias", {4 * C}, 0);
      block("mlp.c_proj.weight", {C, 4 * C}, 1);
      block("mlp.c_proj.bias", {C}, kRep);
    }
    add("ln_f.weight", {C}, kRep, StagePlacement::kLastStage);
    add("ln_f.bias", {C}, kRep, StagePlacement::kLastStage);
    return plan;
  }

  // Matrices and embeddings N(0, 0.02), residual projections N(0, 0.02/sqrt(2*n_layer)),
  // biases 0, LayerNorm weights 1; padded vocabulary rows of wte are 0.
  void init_tensor(float* out, const TensorView& view, const ModelConfig& cfg,
                   uint64_t seed) const override {
    const std::string& name = view.name;
    if (name.ends_with(".bias")) return fill_constant(out, view, 0.0f);
    if (name.ends_with("ln_1.weight") || name.ends_with("ln_2.weight") || name == "ln_f.weight")
      return fill_constant(out, view, 1.0f);
    const bool residual_proj =
        name.ends_with("attn.c_proj.weight") || name.ends_with("mlp.c_proj.weight");
    const float std =
        residual_proj ? 0.02f / std::sqrt(2.0f * static_cast<float>(cfg.n_layer)) : 0.02f;
    const int64_t zero_rows_from = name == "wte" ? cfg.vocab_size : -1;
    fill_counter_normal(out, view, seed, std, zero_rows_from);
  }

  int64_t num_parameters(const ModelConfig& cfg) const override {
    const int64_t C = cfg.n_embd, V = cfg.vocab_size, T = cfg.max_seq_len;
    const int64_t per_layer =
        2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
    return V * C + T * C + cfg.n_layer * per_layer + 2 * C;
  }

  // 6 per parameter that takes part in a matmul (every block weight and the tied LM head; not
  // the position table) plus attention's 6*L*T*C for sequences of length T: forward and
  // backward of q@k^T and att@v over the causal half of the T x T scores (PaLM's 12*L*T*C
  // counts all of it; the kernels skip the masked half).
  double flops_per_token(const ModelConfig& cfg, int T) const override {
    const double matmul_params = static_cast<double>(num_parameters(cfg)) -
                                 static_cast<double>(cfg.max_seq_len) * cfg.n_embd;
    return 6.0 * matmul_params + 6.0 * cfg.n_layer * static_cast<double>(T) * cfg.n_embd;
  }

  std::string tensor_parallel_problem(const ModelConfig& cfg, int tp) const override {
    if (cfg.n_head % tp != 0)
      return "n_head " + std::to_string(cfg.n_head) + " is not divisible by tp";
    if ((4 * cfg.n_embd) % tp != 0)
      return "4*n_embd " + std::to_string(4 * cfg.n_embd) + " is not divisible by tp";
    return vocab_tensor_parallel_problem(cfg, tp);
  }
};

}  // namespace

const ModelFamily& gpt2_family() {
  static const Gpt2Family family;
  return family;
}

}  // namespace shardlm
