#include "model/gpt2/stage.h"

#include <vector>

#include "model/gpt2/block.h"
#include "model/transformer_stage.h"

namespace shardlm {

namespace {

// One local layer's activations of one micro-batch slot.
struct Gpt2LayerActs {
  Gpt2BlockActs block;
  float* lse;  // [B,Hl,T] attention log-sum-exp
};

// Shapes: N = B*T rows, C channels, Cl = C/tp attention channels (Hl = NH/tp heads of hd),
// Fl = 4C/tp MLP channels.
class Gpt2Stage final : public TransformerStage {
 public:
  explicit Gpt2Stage(const StageRequest& r)
      : TransformerStage(model_family("gpt2"), r),
        H_local_(r.cfg.n_head / r.shard.tp_size),
        hd_(r.cfg.head_dim()),
        dims_{rows(), r.cfg.n_embd, H_local_ * hd_, 4 * r.cfg.n_embd / r.shard.tp_size} {
    allocate_slots();
    const size_t N = dims_.N, Cl = dims_.Cl, Fl = dims_.Fl;
    scratch_ = {norm_output_grad(), alloc_floats(N * 3 * Cl), alloc_floats(N * Cl),
                alloc_floats(N * Fl), alloc_floats(N * Fl)};
  }

 private:
  void allocate_slot() override;

  void embed_forward(float* out, const int32_t* tokens) override {
    gpt2_embedding_forward(backend(), tp(), out, tokens, param("wte"), param("wpe"), B_, T_,
                           dims_.C, 0, vocab_start_, vocab_local_);
  }
  void embed_backward(const float* dresid, const int32_t* tokens) override {
    backend().position_embedding_backward(grad("wpe"), dresid, B_, T_, dims_.C);
    backend().token_embedding_backward(grad("wte"), dresid, tokens, dims_.N, dims_.C, vocab_start_,
                                       vocab_local_);
  }

  void block_forward(int slot, int layer, const float* in, float* out) override {
    Gpt2LayerActs& a = acts(slot, layer);
    gpt2_block_forward(backend(), tp(), dims_,
                       gpt2_block_tensors(layout(), layer_params(layer), layer), a.block, in, out,
                       causal_attention(a));
  }
  void block_recompute_selective(int slot, int layer) override {
    Gpt2LayerActs& a = acts(slot, layer);
    gpt2_block_recompute_selective(backend(), dims_, a.block, causal_attention(a));
  }
  void block_backward(int slot, int layer, const float* in, float* dresid) override;

  // The final LayerNorm.
  void final_norm_forward(int slot, const float* in, float* out) override {
    const NormStats& st = final_norm_stats_.at(static_cast<size_t>(slot));
    backend().layernorm_forward(out, st.mean, st.rstd, in, param("ln_f.weight"), param("ln_f.bias"),
                                dims_.N, dims_.C);
  }
  void final_norm_backward(int slot, const float* in, const float* dout, float* din) override {
    const NormStats& st = final_norm_stats_.at(static_cast<size_t>(slot));
    backend().layernorm_backward(din, grad("ln_f.weight"), grad("ln_f.bias"), dout, in,
                                 param("ln_f.weight"), st.mean, st.rstd, dims_.N, dims_.C);
  }
  const char* head_name() const override { return "wte"; }  // tied

  Gpt2LayerActs& acts(int slot, int layer) {
    return acts_.at(static_cast<size_t>(slot)).at(static_cast<size_t>(local_layer(layer)));
  }
  // Causal attention over the micro-batch: out [N,Cl] from qkv [N,3*Cl].
  Gpt2Attention causal_attention(const Gpt2LayerActs& a) {
    return [this, lse = a.lse](float* out, const float* qkv) {
      backend().attention_forward(out, lse, qkv, B_, T_, H_local_, hd_);
    };
  }

  struct NormStats {
    float *mean, *rstd;  // [N] each
  };
  int H_local_, hd_;
  Gpt2Dims dims_;
  std::vector<std::vector<Gpt2LayerActs>> acts_;  // [slot][local layer]
  std::vector<NormStats> final_norm_stats_;       // [slot] (last stage)
  Gpt2BlockScratch scratch_{};                    // shared by all layers and slots
};

void Gpt2Stage::allocate_slot() {
  const size_t N = dims_.N, C = dims_.C, Cl = dims_.Cl, Fl = dims_.Fl,
               lse = static_cast<size_t>(B_) * H_local_ * T_;
  using R = ActivationRole;
  auto g = [&](const char* name, R role, size_t n) {
    return block_activations().get(name, role, n);
  };
  std::vector<Gpt2LayerActs>& layers = acts_.emplace_back();
  for (int i = 0; i < shard().layer_end - shard().layer_begin; ++i) {
    Gpt2LayerActs a{};
    Gpt2BlockActs& L = a.block;
    L.ln1 = g("ln1", R::Internal, N * C);
    L.ln1_mean = g("ln1_mean", R::Internal, N);
    L.ln1_rstd = g("ln1_rstd", R::Internal, N);
    L.qkv = g("qkv", R::Internal, N * 3 * Cl);
    a.lse = g("lse", R::Attention, lse);
    L.atty = g("atty", R::Attention, N * Cl);
    L.attproj = g("attproj", R::Internal, N * C);
    L.resid2 = g("resid2", R::Internal, N * C);
    L.ln2 = g("ln2", R::Internal, N * C);
    L.ln2_mean = g("ln2_mean", R::Internal, N);
    L.ln2_rstd = g("ln2_rstd", R::Internal, N);
    L.fc = g("fc", R::Internal, N * Fl);
    L.fc_gelu = g("fc_gelu", R::Nonlinearity, N * Fl);
    L.fcproj = g("fcproj", R::Internal, N * C);
    layers.push_back(a);
  }
  if (shard().last_stage) final_norm_stats_.push_back({alloc_floats(N), alloc_floats(N)});
}

void Gpt2Stage::block_backward(int slot, int layer, const float* in, float* dresid) {
  const Gpt2LayerActs& a = acts(slot, layer);
  const auto attention_backward = [&](float* dqkv, const float* datty, const float* qkv) {
    backend().attention_backward(dqkv, datty, qkv, a.block.atty, a.lse, B_, T_, H_local_, hd_);
  };
  gpt2_block_backward(backend(), tp(), dims_,
                      gpt2_block_tensors(layout(), layer_params(layer), layer),
                      gpt2_block_tensors(layout(), layer_grads(layer), layer), a.block, in, dresid,
                      scratch_, attention_backward);
}

}  // namespace

std::unique_ptr<ModelStage> make_gpt2_stage(const StageRequest& request) {
  return std::make_unique<Gpt2Stage>(request);
}

// The shared stage's buffers plus what Gpt2Stage allocates (every buffer is 4-byte f32).
ActivationFootprint gpt2_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard, int B,
                                              int T) {
  const size_t N = static_cast<size_t>(B) * T, C = cfg.n_embd;
  const size_t Cl = C / shard.tp_size, Fl = 4 * C / shard.tp_size;
  const size_t lse = static_cast<size_t>(B) * (cfg.n_head / shard.tp_size) * T;
  ActivationFootprint f = transformer_stage_footprint(cfg, shard, B, T);
  f.layer_cheap = 4 * (lse + N * Cl + N * Fl);        // lse, atty, fc_gelu
  f.layer_rest = 4 * (N * C + 2 * N + N * 3 * Cl      // ln1 (+ mean, rstd), qkv
                      + 2 * N * C                     // attproj, resid2
                      + N * C + 2 * N + N * Fl        // ln2 (+ mean, rstd), fc
                      + N * C);                       // fcproj
  if (shard.last_stage) f.slot_extra += 4 * 2 * N;    // final LayerNorm mean, rstd
  f.fixed += 4 * (N * 3 * Cl + N * Cl + 2 * N * Fl);  // the rest of the block scratch
  return f;
}

}  // namespace shardlm
