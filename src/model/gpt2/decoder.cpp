#include "model/gpt2/decoder.h"

#include "core/error.h"
#include "model/family.h"
#include "parallel/self_comm.h"

namespace shardlm {

Gpt2Decoder::Gpt2Decoder(const ModelConfig& cfg, KernelBackend& backend)
    : cfg_(cfg),
      be_(backend),
      weights_(model_family("gpt2"), cfg, ShardSpec::whole_model(cfg), backend, 0,
               /*with_grads=*/false),
      tp_comm_(std::make_unique<SelfCommunicator>("tp")),
      tp_(*tp_comm_) {
  C_ = cfg.n_embd;
  NH_ = cfg.n_head;
  hd_ = cfg.head_dim();
  Vp_ = cfg.padded_vocab();
  S_ = cfg.max_seq_len;
  const size_t S = S_, C = C_;
  tokens_ = be_.alloc_ints(S, MemoryRole::Workspace);
  owned_.push_back(tokens_);
  resid_ = alloc(S * C);
  float* ln = alloc(S * C);
  float* mean = alloc(S);
  float* rstd = alloc(S);
  float* proj = alloc(S * C);
  acts_ = {ln, mean, rstd, alloc(S * 3 * C), alloc(S * C),     proj, alloc(S * C),
           ln, mean, rstd, alloc(S * 4 * C), alloc(S * 4 * C), proj};
  logits_dev_ = alloc(static_cast<size_t>(Vp_));
  kv_cache_ = alloc(static_cast<size_t>(cfg.n_layer) * 2 * S * C);
}

Gpt2Decoder::~Gpt2Decoder() {
  for (void* p : owned_) be_.free_memory(p);
}

float* Gpt2Decoder::alloc(size_t n) {
  float* p = be_.alloc_floats(n, MemoryRole::Workspace);
  owned_.push_back(p);
  return p;
}

void Gpt2Decoder::forward(const int32_t* tokens, int n, int pos0, float* logits_host) {
  SHARDLM_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= S_, "decoder forward outside the context");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size)
      fail("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(pos0 + i) +
           " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
  const float* wte = weights_.param("wte");
  be_.copy_from_host(tokens_, tokens, static_cast<size_t>(n) * sizeof(int32_t));
  gpt2_embedding_forward(be_, tp_, resid_, tokens_, wte, weights_.param("wpe"), 1, n, C_, pos0, 0,
                         Vp_);
  for (int l = 0; l < cfg_.n_layer; ++l) block_forward(l, n, pos0);
  // Only the last position's logits are needed: final layernorm and tied head on one row.
  be_.layernorm_forward(acts_.ln1, acts_.ln1_mean, acts_.ln1_rstd,
                        resid_ + static_cast<size_t>(n - 1) * C_, weights_.param("ln_f.weight"),
                        weights_.param("ln_f.bias"), 1, C_);
  be_.matmul_forward(logits_dev_, acts_.ln1, wte, nullptr, 1, C_, Vp_);
  be_.copy_to_host(logits_host, logits_dev_, static_cast<size_t>(cfg_.vocab_size) * sizeof(float));
}

void Gpt2Decoder::block_forward(int layer, int n, int pos0) {
  const size_t layer_cache = static_cast<size_t>(S_) * C_;
  float* k_cache = kv_cache_ + static_cast<size_t>(layer) * 2 * layer_cache;  // [NH,S,hd]
  float* v_cache = k_cache + layer_cache;                                     // [NH,S,hd]
  const auto attention = [&](float* out, const float* qkv) {
    be_.kv_cache_append(k_cache, v_cache, qkv, pos0, n, NH_, hd_, S_);
    be_.attention_decode(out, qkv, k_cache, v_cache, pos0, n, NH_, hd_, S_);
  };
  const Gpt2Dims dims{n, C_, C_, 4 * C_};
  gpt2_block_forward(be_, tp_, dims,
                     gpt2_block_tensors(weights_.layout(), weights_.params(), layer), acts_, resid_,
                     resid_, attention);
}

}  // namespace shardlm
