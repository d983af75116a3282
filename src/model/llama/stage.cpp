#include "model/llama/stage.h"

#include <vector>

#include "model/llama/block.h"
#include "model/llama/rope.h"
#include "model/transformer_stage.h"

namespace shardlm {

namespace {

// One local layer's activations of one micro-batch slot.
struct LlamaLayerActs {
  LlamaBlockActs block;
  float* lse;  // [B,Hl,T] attention log-sum-exp
};

// Shapes (block.h): N = B*T rows, C channels, KVl key/value heads of this TP rank with g query
// heads each, hd head size, Fl = F/tp MLP channels.
class LlamaStage final : public TransformerStage {
 public:
  explicit LlamaStage(const StageRequest& r)
      : TransformerStage(model_family("llama"), r),
        dims_{rows(),
              r.cfg.n_embd,
              r.cfg.kv_heads() / r.shard.tp_size,
              r.cfg.n_head / r.cfg.kv_heads(),
              r.cfg.head_dim(),
              r.cfg.intermediate_size / r.shard.tp_size,
              static_cast<float>(r.cfg.norm_eps)} {
    allocate_slots();
    const RopeTables rope = rope_tables(r.cfg);
    rope_cos_ = alloc_floats(rope.cos.size());
    rope_sin_ = alloc_floats(rope.sin.size());
    r.backend.copy_from_host(rope_cos_, rope.cos.data(), rope.cos.size() * sizeof(float));
    r.backend.copy_from_host(rope_sin_, rope.sin.data(), rope.sin.size() * sizeof(float));
    const size_t N = dims_.N;
    scratch_ = {norm_output_grad(), alloc_floats(N * dims_.qkv()), alloc_floats(N * dims_.attn()),
                alloc_floats(N * 2 * dims_.Fl), alloc_floats(N * dims_.Fl)};
  }

 private:
  void allocate_slot() override;

  void embed_forward(float* out, const int32_t* tokens) override {
    vocab_embedding_forward(backend(), tp(), out, tokens, param("embed_tokens"), dims_.N, dims_.C,
                            vocab_shard());
  }
  void embed_backward(const float* dresid, const int32_t* tokens) override {
    backend().token_embedding_backward(grad("embed_tokens"), dresid, tokens, dims_.N, dims_.C,
                                       vocab_start_, vocab_local_);
  }

  // The training attention rotates q and k first; selective recomputation reuses the kept,
  // already rotated qkv.
  void block_forward(int slot, int layer, const float* in, float* out) override {
    LlamaLayerActs& a = acts(slot, layer);
    const LlamaAttention attend = causal_attention(a);
    const LlamaAttention attention = [&](float* att_out, float* qkv) {
      backend().rope_forward(qkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
      attend(att_out, qkv);
    };
    llama_block_forward(backend(), tp(), dims_,
                        llama_block_tensors(layout(), layer_params(layer), layer), a.block, in, out,
                        attention);
  }
  void block_recompute_selective(int slot, int layer) override {
    LlamaLayerActs& a = acts(slot, layer);
    llama_block_recompute_selective(backend(), dims_, a.block, causal_attention(a));
  }
  void block_backward(int slot, int layer, const float* in, float* dresid) override;

  // The final RMSNorm.
  void final_norm_forward(int slot, const float* in, float* out) override {
    backend().rmsnorm_forward(out, final_norm_rstd_.at(static_cast<size_t>(slot)), in,
                              param("norm.weight"), dims_.N, dims_.C, dims_.eps);
  }
  void final_norm_backward(int slot, const float* in, const float* dout, float* din) override {
    backend().rmsnorm_backward(din, grad("norm.weight"), dout, in, param("norm.weight"),
                               final_norm_rstd_.at(static_cast<size_t>(slot)), dims_.N, dims_.C);
  }
  const char* head_name() const override {
    return cfg_.tie_embeddings ? "embed_tokens" : "lm_head";
  }

  LlamaLayerActs& acts(int slot, int layer) {
    return acts_.at(static_cast<size_t>(slot)).at(static_cast<size_t>(local_layer(layer)));
  }
  // Causal grouped-query attention over the micro-batch: out [N,Al] from the rotated qkv
  // [N,QKVl].
  LlamaAttention causal_attention(const LlamaLayerActs& a) {
    return [this, lse = a.lse](float* out, float* qkv) {
      backend().attention_gqa_forward(out, lse, qkv, B_, T_, dims_.KVl, dims_.g, dims_.hd);
    };
  }

  LlamaDims dims_;
  std::vector<std::vector<LlamaLayerActs>> acts_;  // [slot][local layer]
  std::vector<float*> final_norm_rstd_;            // [slot] of [N] (last stage)
  float* rope_cos_ = nullptr;                      // [max_seq, hd/2]
  float* rope_sin_ = nullptr;                      // [max_seq, hd/2]
  LlamaBlockScratch scratch_{};                    // shared by all layers and slots
};

void LlamaStage::allocate_slot() {
  const size_t N = dims_.N, C = dims_.C, Fl = dims_.Fl,
               lse = static_cast<size_t>(B_) * dims_.KVl * dims_.g * T_;
  using R = ActivationRole;
  auto g = [&](const char* name, R role, size_t n) {
    return block_activations().get(name, role, n);
  };
  std::vector<LlamaLayerActs>& layers = acts_.emplace_back();
  for (int i = 0; i < shard().layer_end - shard().layer_begin; ++i) {
    LlamaLayerActs a{};
    LlamaBlockActs& L = a.block;
    L.norm1 = g("norm1", R::Internal, N * C);
    L.norm1_rstd = g("norm1_rstd", R::Internal, N);
    L.qkv = g("qkv", R::Internal, N * dims_.qkv());
    a.lse = g("lse", R::Attention, lse);
    L.atty = g("atty", R::Attention, N * dims_.attn());
    L.attproj = g("attproj", R::Internal, N * C);
    L.resid2 = g("resid2", R::Internal, N * C);
    L.norm2 = g("norm2", R::Internal, N * C);
    L.norm2_rstd = g("norm2_rstd", R::Internal, N);
    L.gate_up = g("gate_up", R::Internal, N * 2 * Fl);
    L.act = g("act", R::Nonlinearity, N * Fl);
    L.mlp = g("mlp", R::Internal, N * C);
    layers.push_back(a);
  }
  if (shard().last_stage) final_norm_rstd_.push_back(alloc_floats(N));
}

void LlamaStage::block_backward(int slot, int layer, const float* in, float* dresid) {
  const LlamaLayerActs& a = acts(slot, layer);
  const auto attention_backward = [&](float* dqkv, const float* datty, const float* qkv) {
    backend().attention_gqa_backward(dqkv, datty, qkv, a.block.atty, a.lse, B_, T_, dims_.KVl,
                                     dims_.g, dims_.hd);
    backend().rope_backward(dqkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
  };
  llama_block_backward(backend(), tp(), dims_,
                       llama_block_tensors(layout(), layer_params(layer), layer),
                       llama_block_tensors(layout(), layer_grads(layer), layer), a.block, in,
                       dresid, scratch_, attention_backward);
}

}  // namespace

std::unique_ptr<ModelStage> make_llama_stage(const StageRequest& request) {
  return std::make_unique<LlamaStage>(request);
}

// The shared stage's buffers plus what LlamaStage allocates (every buffer is 4-byte f32).
ActivationFootprint llama_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                               int B, int T) {
  const size_t N = static_cast<size_t>(B) * T, C = cfg.n_embd, hd = cfg.head_dim();
  const size_t KVl = cfg.kv_heads() / shard.tp_size, g = cfg.n_head / cfg.kv_heads();
  const size_t qkv = KVl * (g + 2) * hd, attn = KVl * g * hd;
  const size_t Fl = cfg.intermediate_size / shard.tp_size;
  const size_t lse = static_cast<size_t>(B) * KVl * g * T;
  ActivationFootprint f = transformer_stage_footprint(cfg, shard, B, T);
  f.layer_cheap = 4 * (lse + N * attn + N * Fl);  // lse, atty, act
  f.layer_rest = 4 * (N * C + N + N * qkv         // norm1 (+ rstd), qkv
                      + 2 * N * C + N * C + N     // attproj, resid2, norm2 (+ rstd)
                      + N * 2 * Fl + N * C);      // gate_up, mlp
  if (shard.last_stage) f.slot_extra += 4 * N;    // final RMSNorm rstd
  const size_t rope = 2 * static_cast<size_t>(cfg.max_seq_len) * (hd / 2);
  f.fixed += 4 * (rope + N * qkv + N * attn + 3 * N * Fl);  // rope tables, the block scratch
  return f;
}

}  // namespace shardlm
