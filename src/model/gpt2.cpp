#include "model/gpt2.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "model/init.h"

namespace shardlm {

// Per-layer activations of one micro-batch (N = B*T rows; Cl = C/tp, Fl = 4C/tp, Hl = NH/tp).
struct GPT2::LayerActs {
  float* ln1;       // [N,C]
  float* ln1_mean;  // [N]
  float* ln1_rstd;  // [N]
  float* qkv;       // [N,3*Cl]   = [B,T,3,Hl,hd]
  float* att;       // [B,Hl,T,T] softmax probabilities
  float* atty;      // [N,Cl]
  float* attproj;   // [N,C]      attention output after the TP all-reduce
  float* resid2;    // [N,C]      residual stream after attention
  float* ln2;       // [N,C]
  float* ln2_mean;  // [N]
  float* ln2_rstd;  // [N]
  float* fc;        // [N,Fl]     pre-GELU
  float* fc_gelu;   // [N,Fl]
  float* fcproj;    // [N,C]      MLP output after the TP all-reduce
};

struct GPT2::Acts {
  int32_t* tokens = nullptr;   // [N]
  int32_t* targets = nullptr;  // [N]
  std::vector<float*> resid;   // n_local_layers + 1 of [N,C]: resid[i] = input of local layer i
  std::vector<LayerActs> layers;
  float* lnf = nullptr;       // [N,C]
  float* lnf_mean = nullptr;  // [N]
  float* lnf_rstd = nullptr;  // [N]
  float* logits = nullptr;    // [N,Vl] (dlogits in place after backward)
  float* row_max = nullptr;   // [N]
  float* sums = nullptr;      // [2N]: sum_exp then target_logit (one TP all-reduce)
  float* losses = nullptr;    // [N]
  std::vector<void*> owned;
};

namespace {
// Offsets of a block's parameters in the flat buffer, resolved once.
struct BlockParams {
  size_t ln1_w, ln1_b, qkv_w, qkv_b, attproj_w, attproj_b, ln2_w, ln2_b, fc_w, fc_b, fcproj_w,
      fcproj_b;
};
BlockParams block_params(const ParamLayout& layout, int l) {
  auto off = [&](const char* s) { return layout.get(layer_param_name(l, s)).flat_offset; };
  return {off("ln_1.weight"),      off("ln_1.bias"),          off("attn.c_attn.weight"),
          off("attn.c_attn.bias"), off("attn.c_proj.weight"), off("attn.c_proj.bias"),
          off("ln_2.weight"),      off("ln_2.bias"),          off("mlp.c_fc.weight"),
          off("mlp.c_fc.bias"),    off("mlp.c_proj.weight"),  off("mlp.c_proj.bias")};
}
}  // namespace

GPT2::GPT2(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend, Communicator& tp,
           int B, int T, int slots, size_t flat_capacity)
    : cfg_(cfg), layout_(cfg, shard), be_(backend), tp_(tp), B_(B), T_(T) {
  SHARDLM_CHECK(tp.size() == shard.tp_size && tp.rank() == shard.tp_rank,
                "TP communicator does not match the shard spec");
  if (B <= 0) fail("micro-batch size must be > 0, got " + std::to_string(B));
  if (T <= 0) fail("sequence length must be > 0, got " + std::to_string(T));
  if (T > cfg.max_seq_len)
    fail("sequence length " + std::to_string(T) + " is longer than the model's max_seq_len " +
         std::to_string(cfg.max_seq_len));
  const int tps = shard.tp_size;
  if (cfg.n_head % tps != 0)
    fail("n_head " + std::to_string(cfg.n_head) + " is not divisible by tp " + std::to_string(tps));
  if (cfg.padded_vocab() % tps != 0)
    fail("padded vocabulary " + std::to_string(cfg.padded_vocab()) + " is not divisible by tp " +
         std::to_string(tps));
  C_ = cfg.n_embd;
  hd_ = cfg.head_dim();
  H_local_ = cfg.n_head / tps;
  F_local_ = 4 * C_ / tps;
  vocab_local_ = cfg.padded_vocab() / tps;
  vocab_start_ = vocab_local_ * shard.tp_rank;

  flat_capacity_ = std::max(flat_capacity, layout_.total());
  params_ = be_.alloc_floats(flat_capacity_);
  grads_ = be_.alloc_floats(flat_capacity_);

  const size_t N = static_cast<size_t>(B) * T, C = C_, Cl = static_cast<size_t>(H_local_) * hd_,
               Fl = F_local_, att = static_cast<size_t>(B) * H_local_ * T * T;
  const int n_local = shard.layer_end - shard.layer_begin;
  for (int s = 0; s < slots; ++s) {
    auto a = std::make_unique<Acts>();
    auto f = [&](size_t n) {
      float* p = be_.alloc_floats(n);
      a->owned.push_back(p);
      return p;
    };
    if (shard.first_stage) {
      a->tokens = be_.alloc_ints(N);
      a->owned.push_back(a->tokens);
    }
    for (int i = 0; i <= n_local; ++i) a->resid.push_back(f(N * C));
    for (int i = 0; i < n_local; ++i) {
      LayerActs L{};
      L.ln1 = f(N * C);
      L.ln1_mean = f(N);
      L.ln1_rstd = f(N);
      L.qkv = f(N * 3 * Cl);
      L.att = f(att);
      L.atty = f(N * Cl);
      L.attproj = f(N * C);
      L.resid2 = f(N * C);
      L.ln2 = f(N * C);
      L.ln2_mean = f(N);
      L.ln2_rstd = f(N);
      L.fc = f(N * Fl);
      L.fc_gelu = f(N * Fl);
      L.fcproj = f(N * C);
      a->layers.push_back(L);
    }
    if (shard.last_stage) {
      a->targets = be_.alloc_ints(N);
      a->owned.push_back(a->targets);
      a->lnf = f(N * C);
      a->lnf_mean = f(N);
      a->lnf_rstd = f(N);
      a->logits = f(N * static_cast<size_t>(vocab_local_));
      a->row_max = f(N);
      a->sums = f(2 * N);
      a->losses = f(N);
    }
    acts_.push_back(std::move(a));
  }
  dresid_ = be_.alloc_floats(N * C);
  dln_ = be_.alloc_floats(N * C);
  dqkv_ = be_.alloc_floats(N * 3 * Cl);
  datty_ = be_.alloc_floats(N * Cl);
  dfc_ = be_.alloc_floats(N * Fl);
  dfc_gelu_ = be_.alloc_floats(N * Fl);
  datt_ = be_.alloc_floats(att);
}

GPT2::~GPT2() {
  for (auto& a : acts_)
    for (void* p : a->owned) be_.free_memory(p);
  for (void* p :
       {static_cast<void*>(params_), static_cast<void*>(grads_), static_cast<void*>(dresid_),
        static_cast<void*>(dln_), static_cast<void*>(dqkv_), static_cast<void*>(datty_),
        static_cast<void*>(dfc_), static_cast<void*>(dfc_gelu_), static_cast<void*>(datt_)})
    be_.free_memory(p);
}

void GPT2::init_weights(uint64_t seed) {
  std::vector<float> host;
  for (const auto& v : layout_.views()) {
    host.assign(v.numel, 0.0f);
    fill_gpt2_init(host.data(), v, cfg_, seed);
    be_.copy_from_host(params_ + v.flat_offset, host.data(), v.numel * sizeof(float));
  }
}

void GPT2::zero_grads() {
  be_.fill_zero(grads_, flat_capacity_);
}

const float* GPT2::stage_output(int slot) const {
  return acts_.at(static_cast<size_t>(slot))->resid.back();
}
const float* GPT2::logits(int slot) const {
  return acts_.at(static_cast<size_t>(slot))->logits;
}

void GPT2::check_ids(const int32_t* ids, const char* what) const {
  const size_t N = static_cast<size_t>(B_) * T_;
  for (size_t i = 0; i < N; ++i) {
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      fail(std::string(what) + " id " + std::to_string(ids[i]) + " at position " +
           std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) +
           ")");
  }
}

float GPT2::forward(int slot, const int32_t* tokens, const int32_t* targets, const float* input) {
  Acts& a = *acts_.at(static_cast<size_t>(slot));
  const int N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C_;
  if (shard().first_stage) {
    SHARDLM_CHECK(tokens != nullptr, "first stage needs tokens");
    check_ids(tokens, "token");
    be_.copy_from_host(a.tokens, tokens, static_cast<size_t>(N) * sizeof(int32_t));
    be_.token_embedding_forward(a.resid[0], a.tokens, param("wte"), N, C_, vocab_start_,
                                vocab_local_);
    if (tp_.size() > 1) tp_.all_reduce_sum(a.resid[0], NC);
    be_.position_embedding_forward(a.resid[0], param("wpe"), B_, T_, C_);
  } else {
    SHARDLM_CHECK(input != nullptr, "a non-first stage needs its input activations");
    be_.copy(a.resid[0], input, NC * sizeof(float));
  }
  for (int l = shard().layer_begin; l < shard().layer_end; ++l) layer_forward(l, a);
  if (!shard().last_stage) return 0.0f;

  SHARDLM_CHECK(targets != nullptr, "last stage needs targets");
  check_ids(targets, "target");
  be_.copy_from_host(a.targets, targets, static_cast<size_t>(N) * sizeof(int32_t));
  be_.layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.resid.back(), param("ln_f.weight"),
                        param("ln_f.bias"), N, C_);
  // Tied head: logits = lnf @ wte^T over this rank's vocabulary rows.
  be_.matmul_forward(a.logits, a.lnf, param("wte"), nullptr, N, C_, vocab_local_);
  be_.xent_row_max(a.row_max, a.logits, N, vocab_local_, vocab_start_, cfg_.vocab_size);
  if (tp_.size() > 1) tp_.all_reduce(a.row_max, static_cast<size_t>(N), DType::F32, ReduceOp::Max);
  be_.xent_partial_sums(a.sums, a.sums + N, a.logits, a.row_max, a.targets, N, vocab_local_,
                        vocab_start_, cfg_.vocab_size);
  if (tp_.size() > 1) tp_.all_reduce_sum(a.sums, 2 * static_cast<size_t>(N));
  be_.xent_loss(a.losses, a.row_max, a.sums, a.sums + N, N);
  std::vector<float> losses(static_cast<size_t>(N));
  be_.copy_to_host(losses.data(), a.losses, losses.size() * sizeof(float));
  double total = 0.0;
  for (float x : losses) total += x;
  return static_cast<float>(total / N);
}

void GPT2::layer_forward(int l, Acts& a) {
  const int li = l - shard().layer_begin;
  const BlockParams p = block_params(layout_, l);
  const float* w = params_;
  const bool add_row_bias =
      shard().tp_rank == 0;  // row-parallel biases: once, before the all-reduce
  LayerActs& L = a.layers[static_cast<size_t>(li)];
  const float* in = a.resid[static_cast<size_t>(li)];
  const int N = B_ * T_, Cl = H_local_ * hd_;
  const size_t NC = static_cast<size_t>(N) * C_;

  be_.layernorm_forward(L.ln1, L.ln1_mean, L.ln1_rstd, in, w + p.ln1_w, w + p.ln1_b, N, C_);
  be_.matmul_forward(L.qkv, L.ln1, w + p.qkv_w, w + p.qkv_b, N, C_, 3 * Cl);
  be_.attention_forward(L.atty, L.att, L.qkv, B_, T_, H_local_, hd_);
  be_.matmul_forward(L.attproj, L.atty, w + p.attproj_w, add_row_bias ? w + p.attproj_b : nullptr,
                     N, Cl, C_);
  if (tp_.size() > 1) tp_.all_reduce_sum(L.attproj, NC);
  be_.add(L.resid2, in, L.attproj, NC);

  be_.layernorm_forward(L.ln2, L.ln2_mean, L.ln2_rstd, L.resid2, w + p.ln2_w, w + p.ln2_b, N, C_);
  be_.matmul_forward(L.fc, L.ln2, w + p.fc_w, w + p.fc_b, N, C_, F_local_);
  be_.gelu_forward(L.fc_gelu, L.fc, static_cast<size_t>(N) * F_local_);
  be_.matmul_forward(L.fcproj, L.fc_gelu, w + p.fcproj_w, add_row_bias ? w + p.fcproj_b : nullptr,
                     N, F_local_, C_);
  if (tp_.size() > 1) tp_.all_reduce_sum(L.fcproj, NC);
  be_.add(a.resid[static_cast<size_t>(li) + 1], L.resid2, L.fcproj, NC);
}

void GPT2::backward(int slot, float loss_scale, const float* output_grad) {
  Acts& a = *acts_.at(static_cast<size_t>(slot));
  const int N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C_;
  if (shard().last_stage) {
    // d(mean loss)/d(loss_n) = 1/N; dlogits overwrite the logits.
    be_.xent_backward(a.logits, a.logits, a.row_max, a.sums, a.targets,
                      loss_scale / static_cast<float>(N), N, vocab_local_, vocab_start_,
                      cfg_.vocab_size);
    // Partial d(lnf) over this rank's vocabulary rows, summed over TP.
    be_.matmul_backward(dln_, grad("wte"), nullptr, a.logits, a.lnf, param("wte"), N, C_,
                        vocab_local_);
    if (tp_.size() > 1) tp_.all_reduce_sum(dln_, NC);
    be_.fill_zero(dresid_, NC);
    be_.layernorm_backward(dresid_, grad("ln_f.weight"), grad("ln_f.bias"), dln_, a.resid.back(),
                           param("ln_f.weight"), a.lnf_mean, a.lnf_rstd, N, C_);
  } else {
    SHARDLM_CHECK(output_grad != nullptr, "a non-last stage needs the gradient of its output");
    be_.copy(dresid_, output_grad, NC * sizeof(float));
  }
  for (int l = shard().layer_end - 1; l >= shard().layer_begin; --l) layer_backward(l, a);
  if (shard().first_stage) {
    be_.position_embedding_backward(grad("wpe"), dresid_, B_, T_, C_);
    be_.token_embedding_backward(grad("wte"), dresid_, a.tokens, N, C_, vocab_start_, vocab_local_);
  }
}

void GPT2::layer_backward(int l, Acts& a) {
  const int li = l - shard().layer_begin;
  const BlockParams p = block_params(layout_, l);
  const float* w = params_;
  float* g = grads_;
  LayerActs& L = a.layers[static_cast<size_t>(li)];
  const int N = B_ * T_, Cl = H_local_ * hd_;
  const size_t NC = static_cast<size_t>(N) * C_;

  // MLP: dresid_ holds d(layer output) = d(fcproj) = d(resid2) so far.
  be_.matmul_backward(dfc_gelu_, g + p.fcproj_w, g + p.fcproj_b, dresid_, L.fc_gelu, w + p.fcproj_w,
                      N, F_local_, C_);
  be_.gelu_backward(dfc_, L.fc, dfc_gelu_, static_cast<size_t>(N) * F_local_);
  be_.matmul_backward(dln_, g + p.fc_w, g + p.fc_b, dfc_, L.ln2, w + p.fc_w, N, C_, F_local_);
  if (tp_.size() > 1) tp_.all_reduce_sum(dln_, NC);
  be_.layernorm_backward(dresid_, g + p.ln2_w, g + p.ln2_b, dln_, L.resid2, w + p.ln2_w, L.ln2_mean,
                         L.ln2_rstd, N, C_);

  // Attention: dresid_ now holds d(resid2) = d(attproj).
  be_.matmul_backward(datty_, g + p.attproj_w, g + p.attproj_b, dresid_, L.atty, w + p.attproj_w, N,
                      Cl, C_);
  be_.attention_backward(dqkv_, datt_, datty_, L.qkv, L.att, B_, T_, H_local_, hd_);
  be_.matmul_backward(dln_, g + p.qkv_w, g + p.qkv_b, dqkv_, L.ln1, w + p.qkv_w, N, C_, 3 * Cl);
  if (tp_.size() > 1) tp_.all_reduce_sum(dln_, NC);
  be_.layernorm_backward(dresid_, g + p.ln1_w, g + p.ln1_b, dln_, a.resid[static_cast<size_t>(li)],
                         w + p.ln1_w, L.ln1_mean, L.ln1_rstd, N, C_);
}

}  // namespace shardlm
