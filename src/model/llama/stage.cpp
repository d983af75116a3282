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
  std::vector<float*> lse;     // per local layer [B,Hl,T] attention log-sum-exp
  float* norm = nullptr;       // [N,C] final RMSNorm output
  float* norm_rstd = nullptr;  // [N]
  VocabLossBuffers loss{};
};

LlamaStage::LlamaStage(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend,
                       Communicator& tp, int B, int T, int slots, size_t flat_capacity,
                       Recompute recompute)
    : ModelStage(model_family("llama"), cfg, shard, backend, B, T, flat_capacity),
      tp_(tp),
      block_acts_(recompute, [this](size_t n) { return alloc_floats(n); }) {
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
  if (recompute == Recompute::Full) recompute_out_ = alloc_floats(N * C);
  set_activation_bytes(block_acts_.kept_bytes(), block_acts_.shared_bytes());
}

LlamaStage::~LlamaStage() = default;

std::unique_ptr<LlamaStage::Acts> LlamaStage::make_acts() {
  auto a = std::make_unique<Acts>();
  const size_t N = dims_.N, C = dims_.C, Fl = dims_.Fl,
               lse = static_cast<size_t>(B_) * dims_.KVl * dims_.g * T_;
  auto f = [&](size_t n) { return alloc_floats(n); };
  if (shard().first_stage) {
    a->tokens = alloc_ids(N);
  }
  const int n_local = shard().layer_end - shard().layer_begin;
  for (int i = 0; i <= n_local; ++i) a->resid.push_back(f(N * C));  // always kept
  for (int i = 0; i < n_local; ++i) {
    using R = ActivationRole;
    auto g = [&](const char* name, R role, size_t n) { return block_acts_.get(name, role, n); };
    LlamaBlockActs L{};
    L.norm1 = g("norm1", R::Internal, N * C);
    L.norm1_rstd = g("norm1_rstd", R::Internal, N);
    L.qkv = g("qkv", R::Internal, N * dims_.qkv());
    a->lse.push_back(g("lse", R::Attention, lse));
    L.atty = g("atty", R::Attention, N * dims_.attn());
    L.attproj = g("attproj", R::Internal, N * C);
    L.resid2 = g("resid2", R::Internal, N * C);
    L.norm2 = g("norm2", R::Internal, N * C);
    L.norm2_rstd = g("norm2_rstd", R::Internal, N);
    L.gate_up = g("gate_up", R::Internal, N * 2 * Fl);
    L.act = g("act", R::Nonlinearity, N * Fl);
    L.mlp = g("mlp", R::Internal, N * C);
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
  const size_t lse = static_cast<size_t>(B) * KVl * g * T;
  ActivationFootprint f;
  f.layer_input = 4 * N * C;                          // resid[i]
  f.layer_cheap = 4 * (lse + N * Fl);                 // lse, act
  f.layer_rest = 4 * (N * C + N + N * qkv + N * attn  // norm1 (+ rstd), qkv, atty
                      + 2 * N * C + N * C + N         // attproj, resid2, norm2 (+ rstd)
                      + N * 2 * Fl + N * C);          // gate_up, mlp
  f.slot_extra = 4 * N * C;                           // resid[n_local]: the stage output
  if (shard.first_stage) f.slot_extra += 4 * N;       // tokens
  if (shard.last_stage)                               // targets, norm (+ rstd), loss buffers
    f.slot_extra += 4 * (N + N * C + N + N * (cfg.padded_vocab() / shard.tp_size) + 4 * N);
  const size_t rope = 2 * static_cast<size_t>(cfg.max_seq_len) * (hd / 2);
  f.fixed = 4 * (rope + N * C + N * C + N * qkv + N * attn + 3 * N * Fl);
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
    float* lse = a.lse[li];
    const auto attention = [&](float* out, float* qkv) {
      be.rope_forward(qkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
      be.attention_gqa_forward(out, lse, qkv, B_, T_, dims_.KVl, dims_.g, dims_.hd);
    };
    unit_before_use(static_cast<int>(li));
    llama_block_forward(be, tp_, dims_, llama_block_tensors(layout(), params(), l), a.layers[li],
                        a.resid[li], a.resid[li + 1], attention);
    unit_after_forward(static_cast<int>(li));
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
    float* lse = a.lse[li];
    const auto attention_core = [&](float* out, float* qkv) {
      be.attention_gqa_forward(out, lse, qkv, B_, T_, dims_.KVl, dims_.g, dims_.hd);
    };
    const auto attention = [&](float* out, float* qkv) {
      be.rope_forward(qkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
      attention_core(out, qkv);
    };
    const LlamaBlockTensors w = llama_block_tensors(layout(), params(), l);
    unit_before_use(static_cast<int>(li));
    recompute_block(
        block_acts_.mode(),
        [&] {
          llama_block_forward(be, tp_, dims_, w, a.layers[li], a.resid[li], recompute_out_,
                              attention);
        },
        [&] { llama_block_recompute_selective(be, dims_, a.layers[li], attention_core); });
    const auto attention_backward = [&](float* dqkv, const float* datty, const float* qkv) {
      be.attention_gqa_backward(dqkv, datty, qkv, a.layers[li].atty, lse, B_, T_, dims_.KVl,
                                dims_.g, dims_.hd);
      be.rope_backward(dqkv, rope_cos_, rope_sin_, B_, T_, 0, dims_.KVl, dims_.g, dims_.hd);
    };
    llama_block_backward(be, tp_, dims_, w, llama_block_tensors(layout(), grads(), l), a.layers[li],
                         a.resid[li], dresid_, scratch_, attention_backward);
    unit_after_backward(static_cast<int>(li));
  }
  if (shard().first_stage)
    be.token_embedding_backward(grad("embed_tokens"), dresid_, a.tokens, dims_.N, dims_.C,
                                vocab_start_, vocab_local_);
}

}  // namespace shardlm
