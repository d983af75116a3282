#include "model/kv_cache_decoder.h"

#include <string>

#include "core/error.h"
#include "parallel/self_comm.h"

namespace shardlm {

KvCacheDecoder::KvCacheDecoder(const ModelFamily& family, const ModelConfig& cfg,
                               KernelBackend& backend, int kv_heads, int head_dim)
    : cfg_(cfg),
      be_(backend),
      weights_(family, cfg, ShardSpec::whole_model(cfg), backend, 0, /*with_grads=*/false),
      tp_comm_(std::make_unique<SelfCommunicator>("tp")),
      tp_(*tp_comm_),
      layer_cache_(static_cast<size_t>(kv_heads) * cfg.max_seq_len * head_dim) {
  const size_t S = cfg.max_seq_len, C = cfg.n_embd;
  tokens_ = be_.alloc_ints(S, MemoryRole::Workspace);
  owned_.push_back(tokens_);
  resid_ = alloc(S * C);
  logits_dev_ = alloc(static_cast<size_t>(cfg.padded_vocab()));
  kv_cache_ = alloc(static_cast<size_t>(cfg.n_layer) * 2 * layer_cache_);
}

KvCacheDecoder::~KvCacheDecoder() {
  for (void* p : owned_) be_.free_memory(p);
}

float* KvCacheDecoder::alloc(size_t n) {
  float* p = be_.alloc_floats(n, MemoryRole::Workspace);
  owned_.push_back(p);
  return p;
}

void KvCacheDecoder::forward(const int32_t* tokens, int n, int pos0, float* logits_host) {
  SHARDLM_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= max_rows(),
                "decoder forward outside the context");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size)
      fail("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(pos0 + i) +
           " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
  const int C = cfg_.n_embd;
  be_.copy_from_host(tokens_, tokens, static_cast<size_t>(n) * sizeof(int32_t));
  embed_forward(resid_, tokens_, n, pos0);
  for (int l = 0; l < cfg_.n_layer; ++l) {
    float* k_cache = kv_cache_ + static_cast<size_t>(l) * 2 * layer_cache_;  // [kv_heads,S,hd]
    block_forward(l, resid_, n, pos0, k_cache, k_cache + layer_cache_);
  }
  // Only the last position's logits are needed: final norm and head on one row.
  const float* normed = final_norm_forward(resid_ + static_cast<size_t>(n - 1) * C);
  be_.matmul_forward(logits_dev_, normed, param(head_name()), nullptr, 1, C, cfg_.padded_vocab());
  be_.copy_to_host(logits_host, logits_dev_, static_cast<size_t>(cfg_.vocab_size) * sizeof(float));
}

}  // namespace shardlm
