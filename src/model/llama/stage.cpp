#include "model/llama/stage.h"

#include <string>

#include "core/error.h"
#include "model/llama/rope.h"

namespace shardlm {

// One micro-batch slot's activations.
struct LlamaStage::Acts {
  int32_t* tokens = nullptr;   // [N]
  int32_t* targets = nullptr;  // [N]
  std::vector<float*> resid;   // n_local_layers + 1 of [N,C]
  std::vector<LlamaBlockActs> layers;
  std::vector<float*> att;     // per local layer [B,Hl,T,T]
  float* norm = nullptr;       // [N,C] final RMSNorm output
  float* norm_rstd = nullptr;  // [N]
  VocabLossBuffers loss{};
};

LlamaStage::LlamaStage(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend,
                       Communicator& tp, int B, int T, int slots, size_t flat_capacity)
    : ModelStage(model_family("llama"), cfg, shard, backend, B, T, flat_capacity), tp_(tp) {
  SHARDLM_CHECK(tp.size() == shard.tp_size && tp.rank() == shard.tp_rank,
                "TP communicator does not match the shard spec");
  const int kv = cfg.kv_heads();
  dims_ = {B * T,
           cfg.n_embd,
           kv / shard.tp_size,
           cfg.n_head / kv,
           cfg.head_dim(),
           cfg.intermediate_size / shard.tp_size,
           static_cast<float>(cfg.norm_eps)};
  for (int s = 0; s < slots; ++s) acts_.push_back(make_acts());
  const RopeTables rope = rope_tables(cfg);
  rope_cos_ = alloc_floats(rope.cos.size());
  rope_sin_ = alloc_floats(rope.sin.size());
  backend.copy_from_host(rope_cos_, rope.cos.data(), rope.cos.size() * sizeof(float));
  backend.copy_from_host(rope_sin_, rope.sin.data(), rope.sin.size() * sizeof(float));
  const size_t N = dims_.N, C = dims_.C;
  dresid_ = alloc_floats(N * C);
  scratch_ = {alloc_floats(N * C), alloc_floats(N * dims_.qkv()), alloc_floats(N * dims_.attn()),
              alloc_floats(N * 2 * dims_.Fl), alloc_floats(N * dims_.Fl)};
  datt_ = alloc_floats(static_cast<size_t>(B) * dims_.KVl * dims_.g * T * T);
}

LlamaStage::~LlamaStage() = default;

std::unique_ptr<LlamaStage::Acts> LlamaStage::make_acts() {
  auto a = std::make_unique<Acts>();
  const size_t N = dims_.N, C = dims_.C, Fl = dims_.Fl,
               att = static_cast<size_t>(B_) * dims_.KVl * dims_.g * T_ * T_;
  auto f = [&](size_t n) { return alloc_floats(n); };
  if (shard().first_stage) {
    a->tokens = alloc_ids(N);
  }
  const int n_local = shard().layer_end - shard().layer_begin;
  for (int i = 0; i <= n_local; ++i) a->resid.push_back(f(N * C));
  for (int i = 0; i < n_local; ++i) {
    LlamaBlockActs L{};
    L.norm1 = f(N * C);
    L.norm1_rstd = f(N);
    L.qkv = f(N * dims_.qkv());
    a->att.push_back(f(att));
    L.atty = f(N * dims_.attn());
    L.attproj = f(N * C);
    L.resid2 = f(N * C);
    L.norm2 = f(N * C);
    L.norm2_rstd = f(N);
    L.gate_up = f(N * 2 * Fl);
    L.act = f(N * Fl);
    L.mlp = f(N * C);
    a->layers.push_back(L);
  }
  if (shard().last_stage) {
    a->targets = alloc_ids(N);
    a->norm = f(N * C);
    a->norm_rstd = f(N);
    a->loss = {f(N * static_cast<size_t>(vocab_local_)), f(N), f(2 * N), f(N)};
  }
  return a;
}

// The sizes make_acts and the constructor allocate (every buffer is 4-byte f32 or i32).
ActivationFootprint llama_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                               int B, int T) {
  const size_t N = static_cast<size_t>(B) * T, C = cfg.n_embd, hd = cfg.head_dim();
  const size_t KVl = cfg.kv_heads() / shard.tp_size, g = cfg.n_head / cfg.kv_heads();
  const size_t qkv = KVl * (g + 2) * hd, attn = KVl * g * hd;
  const size_t Fl = cfg.intermediate_size / shard.tp_size;
  const size_t att = static_cast<size_t>(B) * KVl * g * T * T;
  ActivationFootprint f;
  f.layer_input = 4 * N * C;                          // resid[i]
  f.layer_cheap = 4 * (att + N * Fl);                 // att, act
  f.layer_rest = 4 * (N * C + N + N * qkv + N * attn  // norm1 (+ rstd), qkv, atty
                      + 2 * N * C + N * C + N         // attproj, resid2, norm2 (+ rstd)
                      + N * 2 * Fl + N * C);          // gate_up, mlp
  f.slot_extra = 4 * N * C;                           // resid[n_local]: the stage output
  if (shard.first_stage) f.slot_extra += 4 * N;       // tokens
  if (shard.last_stage)                               // targets, norm (+ rstd), loss buffers
    f.slot_extra += 4 * (N + N * C + N + N * (cfg.padded_vocab() / shard.tp_size) + 4 * N);
  const size_t rope = 2 * static_cast<size_t>(cfg.max_seq_len) * (hd / 2);
  f.fixed = 4 * (rope + N * C + N * C + N * qkv + N * attn + 3 * N * Fl + att);
  return f;
}

const float* LlamaStage::stage_output(int slot) const {
  return acts_.at(static_cast<size_t>(slot))->resid.back();
}
const float* LlamaStage::logits(int slot) const {
  return acts_.at(static_cast<size_t>(slot))->loss.logits;
}

float LlamaStage::forward(int slot, const int32_t* tokens, const int32_t* targets,
                          const float* input) {
  Acts& a = *acts_.at(static_cast<size_t>(slot));
  KernelBackend& be = backend();
  const int N = dims_.N;
  if (shard().first_stage) {
    upload_ids(a.tokens, tokens, "token");
    vocab_embedding_forward(be, tp_, a.resid[0], a.tokens, param("embed_tokens"), N, dims_.C,
                            vocab_shard());
  } else {
    take_boundary(a.resid[0], input, "the previous stage's activations");
  }
  for (int l = shard().layer_begin; l < shard().layer_end; ++l) {
    const auto li = static_cast<size_t>(l - shard().layer_begin);
    float* att = a.att[li];
    const auto attention = [&](float* out, float* qkv) {
      be.rope_forward(qkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
      be.attention_gqa_forward(out, att, qkv, B_, T_, dims_.KVl, dims_.g, dims_.hd);
    };
    llama_block_forward(be, tp_, dims_, llama_block_tensors(layout(), params(), l), a.layers[li],
                        a.resid[li], a.resid[li + 1], attention);
  }
  if (!shard().last_stage) return 0.0f;
  upload_ids(a.targets, targets, "target");
  return head_forward(a);
}

float LlamaStage::head_forward(Acts& a) {
  const int N = dims_.N, C = dims_.C;
  backend().rmsnorm_forward(a.norm, a.norm_rstd, a.resid.back(), param("norm.weight"), N, C,
                            dims_.eps);
  return vocab_loss_forward(backend(), tp_, a.loss, a.norm, param(head_name()), a.targets, N, C,
                            vocab_shard());
}

void LlamaStage::head_backward(Acts& a, float loss_scale) {
  KernelBackend& be = backend();
  const int N = dims_.N, C = dims_.C;
  vocab_loss_backward(be, tp_, a.loss, scratch_.dnorm, grad(head_name()), a.norm,
                      param(head_name()), a.targets, loss_scale, N, C, vocab_shard());
  be.fill_zero(dresid_, static_cast<size_t>(N) * C);
  be.rmsnorm_backward(dresid_, grad("norm.weight"), scratch_.dnorm, a.resid.back(),
                      param("norm.weight"), a.norm_rstd, N, C);
}

void LlamaStage::backward(int slot, float loss_scale, const float* output_grad) {
  Acts& a = *acts_.at(static_cast<size_t>(slot));
  KernelBackend& be = backend();
  if (shard().last_stage) {
    head_backward(a, loss_scale);
  } else {
    take_boundary(dresid_, output_grad, "the gradient of its output");
  }
  for (int l = shard().layer_end - 1; l >= shard().layer_begin; --l) {
    const auto li = static_cast<size_t>(l - shard().layer_begin);
    const float* att = a.att[li];
    const auto attention_backward = [&](float* dqkv, const float* datty, const float* qkv) {
      be.attention_gqa_backward(dqkv, datt_, datty, qkv, att, B_, T_, dims_.KVl, dims_.g, dims_.hd);
      be.rope_backward(dqkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
    };
    llama_block_backward(be, tp_, dims_, llama_block_tensors(layout(), params(), l),
                         llama_block_tensors(layout(), grads(), l), a.layers[li], a.resid[li],
                         dresid_, scratch_, attention_backward);
  }
  if (shard().first_stage)
    be.token_embedding_backward(grad("embed_tokens"), dresid_, a.tokens, dims_.N, dims_.C,
                                vocab_start_, vocab_local_);
}

}  // namespace shardlm
