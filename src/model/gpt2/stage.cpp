#include "model/gpt2/stage.h"

#include <string>

#include "core/error.h"

namespace shardlm {

// One micro-batch slot's activations (N = B*T rows; Cl = C/tp, Fl = 4C/tp, Hl = NH/tp).
struct Gpt2Stage::Acts {
  int32_t* tokens = nullptr;   // [N]
  int32_t* targets = nullptr;  // [N]
  std::vector<float*> resid;   // n_local_layers + 1 of [N,C]: resid[i] = input of local layer i
  std::vector<Gpt2BlockActs> layers;
  std::vector<float*> lse;    // per local layer [B,Hl,T] attention log-sum-exp
  float* lnf = nullptr;       // [N,C]
  float* lnf_mean = nullptr;  // [N]
  float* lnf_rstd = nullptr;  // [N]
  VocabLossBuffers loss{};    // logits [N,Vl] and the cross-entropy's per-row values
};

Gpt2Stage::Gpt2Stage(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend,
                     Communicator& tp, int B, int T, int slots, size_t flat_capacity,
                     Recompute recompute)
    : ModelStage(model_family("gpt2"), cfg, shard, backend, B, T, flat_capacity),
      tp_(tp),
      block_acts_(recompute, [this](size_t n) { return alloc_floats(n); }) {
  SHARDLM_CHECK(tp.size() == shard.tp_size && tp.rank() == shard.tp_rank,
                "TP communicator does not match the shard spec");
  hd_ = cfg.head_dim();
  H_local_ = cfg.n_head / shard.tp_size;
  dims_ = {B * T, cfg.n_embd, H_local_ * hd_, 4 * cfg.n_embd / shard.tp_size};
  for (int s = 0; s < slots; ++s) acts_.push_back(make_acts());
  const size_t N = dims_.N, C = dims_.C, Cl = dims_.Cl, Fl = dims_.Fl;
  dresid_ = alloc_floats(N * C);
  scratch_ = {alloc_floats(N * C), alloc_floats(N * 3 * Cl), alloc_floats(N * Cl),
              alloc_floats(N * Fl), alloc_floats(N * Fl)};
  if (recompute == Recompute::Full) recompute_out_ = alloc_floats(N * C);
  set_activation_bytes(block_acts_.kept_bytes(), block_acts_.shared_bytes());
}

Gpt2Stage::~Gpt2Stage() = default;

std::unique_ptr<Gpt2Stage::Acts> Gpt2Stage::make_acts() {
  auto a = std::make_unique<Acts>();
  const size_t N = dims_.N, C = dims_.C, Cl = dims_.Cl, Fl = dims_.Fl,
               lse = static_cast<size_t>(B_) * H_local_ * T_;
  auto f = [&](size_t n) { return alloc_floats(n); };
  if (shard().first_stage) {
    a->tokens = alloc_ids(N);
  }
  const int n_local = shard().layer_end - shard().layer_begin;
  for (int i = 0; i <= n_local; ++i) a->resid.push_back(f(N * C));  // always kept
  for (int i = 0; i < n_local; ++i) {
    using R = ActivationRole;
    auto g = [&](const char* name, R role, size_t n) { return block_acts_.get(name, role, n); };
    Gpt2BlockActs L{};
    L.ln1 = g("ln1", R::Internal, N * C);
    L.ln1_mean = g("ln1_mean", R::Internal, N);
    L.ln1_rstd = g("ln1_rstd", R::Internal, N);
    L.qkv = g("qkv", R::Internal, N * 3 * Cl);
    a->lse.push_back(g("lse", R::Attention, lse));
    L.atty = g("atty", R::Attention, N * Cl);
    L.attproj = g("attproj", R::Internal, N * C);
    L.resid2 = g("resid2", R::Internal, N * C);
    L.ln2 = g("ln2", R::Internal, N * C);
    L.ln2_mean = g("ln2_mean", R::Internal, N);
    L.ln2_rstd = g("ln2_rstd", R::Internal, N);
    L.fc = g("fc", R::Internal, N * Fl);
    L.fc_gelu = g("fc_gelu", R::Nonlinearity, N * Fl);
    L.fcproj = g("fcproj", R::Internal, N * C);
    a->layers.push_back(L);
  }
  if (shard().last_stage) {
    a->targets = alloc_ids(N);
    a->lnf = f(N * C);
    a->lnf_mean = f(N);
    a->lnf_rstd = f(N);
    a->loss = {f(N * static_cast<size_t>(vocab_local_)), f(N), f(2 * N), f(N)};
  }
  return a;
}

// The sizes make_acts and the constructor allocate (every buffer is 4-byte f32 or i32).
ActivationFootprint gpt2_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard, int B,
                                              int T) {
  const size_t N = static_cast<size_t>(B) * T, C = cfg.n_embd;
  const size_t Cl = C / shard.tp_size, Fl = 4 * C / shard.tp_size;
  const size_t lse = static_cast<size_t>(B) * (cfg.n_head / shard.tp_size) * T;
  ActivationFootprint f;
  f.layer_input = 4 * N * C;                      // resid[i]
  f.layer_cheap = 4 * (lse + N * Fl);             // lse, fc_gelu
  f.layer_rest = 4 * (N * C + 2 * N + N * 3 * Cl  // ln1 (+ mean, rstd), qkv
                      + N * Cl + 2 * N * C        // atty, attproj, resid2
                      + N * C + 2 * N + N * Fl    // ln2 (+ mean, rstd), fc
                      + N * C);                   // fcproj
  f.slot_extra = 4 * N * C;                       // resid[n_local]: the stage output
  if (shard.first_stage) f.slot_extra += 4 * N;   // tokens
  if (shard.last_stage)                           // targets, lnf (+ mean, rstd), loss buffers
    f.slot_extra += 4 * (N + N * C + 2 * N + N * (cfg.padded_vocab() / shard.tp_size) + 4 * N);
  f.fixed = 4 * (N * C + N * C + N * 3 * Cl + N * Cl + 2 * N * Fl);  // dresid, scratch
  return f;
}

const float* Gpt2Stage::stage_output(int slot) const {
  return acts_.at(static_cast<size_t>(slot))->resid.back();
}
const float* Gpt2Stage::logits(int slot) const {
  return acts_.at(static_cast<size_t>(slot))->loss.logits;
}

float Gpt2Stage::forward(int slot, const int32_t* tokens, const int32_t* targets,
                         const float* input) {
  Acts& a = *acts_.at(static_cast<size_t>(slot));
  KernelBackend& be = backend();
  const int N = dims_.N;
  const size_t NC = static_cast<size_t>(N) * dims_.C;
  if (shard().first_stage) {
    upload_ids(a.tokens, tokens, "token");
    gpt2_embedding_forward(be, tp_, a.resid[0], a.tokens, param("wte"), param("wpe"), B_, T_,
                           dims_.C, 0, vocab_start_, vocab_local_);
  } else {
    take_boundary(a.resid[0], input, "the previous stage's activations");
  }
  for (int l = shard().layer_begin; l < shard().layer_end; ++l) {
    const auto li = static_cast<size_t>(l - shard().layer_begin);
    float* lse = a.lse[li];
    const auto attention = [&](float* out, const float* qkv) {
      be.attention_forward(out, lse, qkv, B_, T_, H_local_, hd_);
    };
    unit_before_use(static_cast<int>(li));
    gpt2_block_forward(be, tp_, dims_, gpt2_block_tensors(layout(), params(), l), a.layers[li],
                       a.resid[li], a.resid[li + 1], attention);
    unit_after_forward(static_cast<int>(li));
  }
  if (!shard().last_stage) return 0.0f;
  upload_ids(a.targets, targets, "target");
  return head_forward(a);
}

// Final LayerNorm, then the tied head and the vocab-parallel cross-entropy; returns the mean
// loss over the micro-batch.
float Gpt2Stage::head_forward(Acts& a) {
  KernelBackend& be = backend();
  const int N = dims_.N, C = dims_.C;
  be.layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.resid.back(), param("ln_f.weight"),
                       param("ln_f.bias"), N, C);
  return vocab_loss_forward(be, tp_, a.loss, a.lnf, param("wte"), a.targets, N, C, vocab_shard());
}

void Gpt2Stage::head_backward(Acts& a, float loss_scale) {
  KernelBackend& be = backend();
  const int N = dims_.N, C = dims_.C;
  vocab_loss_backward(be, tp_, a.loss, scratch_.dln, grad("wte"), a.lnf, param("wte"), a.targets,
                      loss_scale, N, C, vocab_shard());
  be.fill_zero(dresid_, static_cast<size_t>(N) * C);
  be.layernorm_backward(dresid_, grad("ln_f.weight"), grad("ln_f.bias"), scratch_.dln,
                        a.resid.back(), param("ln_f.weight"), a.lnf_mean, a.lnf_rstd, N, C);
}

void Gpt2Stage::backward(int slot, float loss_scale, const float* output_grad) {
  Acts& a = *acts_.at(static_cast<size_t>(slot));
  KernelBackend& be = backend();
  const int N = dims_.N;
  if (shard().last_stage) {
    head_backward(a, loss_scale);
  } else {
    take_boundary(dresid_, output_grad, "the gradient of its output");
  }
  for (int l = shard().layer_end - 1; l >= shard().layer_begin; --l) {
    const auto li = static_cast<size_t>(l - shard().layer_begin);
    float* lse = a.lse[li];
    const auto attention = [&](float* out, const float* qkv) {
      be.attention_forward(out, lse, qkv, B_, T_, H_local_, hd_);
    };
    const Gpt2BlockTensors w = gpt2_block_tensors(layout(), params(), l);
    unit_before_use(static_cast<int>(li));
    recompute_block(
        block_acts_.mode(),
        [&] {
          gpt2_block_forward(be, tp_, dims_, w, a.layers[li], a.resid[li], recompute_out_,
                             attention);
        },
        [&] { gpt2_block_recompute_selective(be, dims_, a.layers[li], attention); });
    const auto attention_backward = [&](float* dqkv, const float* datty, const float* qkv) {
      be.attention_backward(dqkv, datty, qkv, a.layers[li].atty, lse, B_, T_, H_local_, hd_);
    };
    gpt2_block_backward(be, tp_, dims_, w, gpt2_block_tensors(layout(), grads(), l), a.layers[li],
                        a.resid[li], dresid_, scratch_, attention_backward);
    unit_after_backward(static_cast<int>(li));
  }
  if (shard().first_stage) {
    be.position_embedding_backward(grad("wpe"), dresid_, B_, T_, dims_.C);
    be.token_embedding_backward(grad("wte"), dresid_, a.tokens, N, dims_.C, vocab_start_,
                                vocab_local_);
  }
}

}  // namespace shardlm
