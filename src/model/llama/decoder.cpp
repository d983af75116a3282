#include "model/llama/decoder.h"

#include "core/error.h"
#include "model/family.h"
#include "model/llama/rope.h"
#include "model/vocab_parallel.h"
#include "parallel/self_comm.h"

namespace shardlm {

LlamaDecoder::LlamaDecoder(const ModelConfig& cfg, KernelBackend& backend)
    : cfg_(cfg),
      be_(backend),
      weights_(model_family("llama"), cfg, ShardSpec::whole_model(cfg), backend, 0,
               /*with_grads=*/false),
      tp_comm_(std::make_unique<SelfCommunicator>("tp")),
      tp_(*tp_comm_) {
  const int kv = cfg.kv_heads();
  S_ = cfg.max_seq_len;
  Vp_ = cfg.padded_vocab();
  dims_ = {S_,
           cfg.n_embd,
           kv,
           cfg.n_head / kv,
           cfg.head_dim(),
           cfg.intermediate_size,
           static_cast<float>(cfg.norm_eps)};
  const size_t S = S_, C = dims_.C;
  tokens_ = be_.alloc_ints(S, MemoryRole::Workspace);
  owned_.push_back(tokens_);
  resid_ = alloc(S * C);
  float* norm = alloc(S * C);
  float* rstd = alloc(S);
  float* proj = alloc(S * C);
  acts_ = {norm, rstd, alloc(S * dims_.qkv()),  alloc(S * dims_.attn()), proj, alloc(S * C),
           norm, rstd, alloc(S * 2 * dims_.Fl), alloc(S * dims_.Fl),     proj};
  const RopeTables rope = rope_tables(cfg);
  rope_cos_ = alloc(rope.cos.size());
  rope_sin_ = alloc(rope.sin.size());
  be_.copy_from_host(rope_cos_, rope.cos.data(), rope.cos.size() * sizeof(float));
  be_.copy_from_host(rope_sin_, rope.sin.data(), rope.sin.size() * sizeof(float));
  logits_dev_ = alloc(static_cast<size_t>(Vp_));
  kv_cache_ = alloc(static_cast<size_t>(cfg.n_layer) * 2 * kv * S * dims_.hd);
}

LlamaDecoder::~LlamaDecoder() {
  for (void* p : owned_) be_.free_memory(p);
}

float* LlamaDecoder::alloc(size_t n) {
  float* p = be_.alloc_floats(n, MemoryRole::Workspace);
  owned_.push_back(p);
  return p;
}

void LlamaDecoder::forward(const int32_t* tokens, int n, int pos0, float* logits_host) {
  SHARDLM_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= S_, "decoder forward outside the context");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size)
      fail("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(pos0 + i) +
           " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
  be_.copy_from_host(tokens_, tokens, static_cast<size_t>(n) * sizeof(int32_t));
  vocab_embedding_forward(be_, tp_, resid_, tokens_, weights_.param("embed_tokens"), n, dims_.C,
                          {0, Vp_, cfg_.vocab_size});
  for (int l = 0; l < cfg_.n_layer; ++l) block_forward(l, n, pos0);
  // Only the last position's logits are needed: final norm and head on one row.
  be_.rmsnorm_forward(acts_.norm1, acts_.norm1_rstd, resid_ + static_cast<size_t>(n - 1) * dims_.C,
                      weights_.param("norm.weight"), 1, dims_.C, dims_.eps);
  const float* head = weights_.param(cfg_.tie_embeddings ? "embed_tokens" : "lm_head");
  be_.matmul_forward(logits_dev_, acts_.norm1, head, nullptr, 1, dims_.C, Vp_);
  be_.copy_to_host(logits_host, logits_dev_, static_cast<size_t>(cfg_.vocab_size) * sizeof(float));
}

void LlamaDecoder::block_forward(int layer, int n, int pos0) {
  const size_t layer_cache = static_cast<size_t>(dims_.KVl) * S_ * dims_.hd;
  float* k_cache = kv_cache_ + static_cast<size_t>(layer) * 2 * layer_cache;  // [KV,S,hd]
  float* v_cache = k_cache + layer_cache;                                     // [KV,S,hd]
  const auto attention = [&](float* out, float* qkv) {
    be_.rope_forward(qkv, rope_cos_, rope_sin_, 1, n, pos0, dims_.KVl, dims_.g, dims_.hd);
    be_.kv_cache_append_gqa(k_cache, v_cache, qkv, pos0, n, dims_.KVl, dims_.g, dims_.hd, S_);
    be_.attention_decode_gqa(out, qkv, k_cache, v_cache, pos0, n, dims_.KVl, dims_.g, dims_.hd, S_);
  };
  LlamaDims d = dims_;
  d.N = n;
  llama_block_forward(be_, tp_, d, llama_block_tensors(weights_.layout(), weights_.params(), layer),
                      acts_, resid_, resid_, attention);
}

}  // namespace shardlm
