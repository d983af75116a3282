// The KV-cached generation of every family, written once (model/decoder.h): the whole model on
// one rank, a cache of kv_heads heads per layer, and for each forward of n new tokens at
// positions pos0..pos0+n-1
//
//   resid = embed(tokens, pos0)
//   resid = block_l(resid)  for every layer, its attention appending to layer l's cache
//   logits = head(final_norm(resid[n-1]))   (the last position only)
//
// The family brings the hooks below (the training block of block.h with its attention against
// the cache); this class brings the buffers, the cache, the checks and the head.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/decoder.h"
#include "model/family.h"
#include "parallel/comm.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

class KvCacheDecoder : public CachedDecoder {
 public:
  ~KvCacheDecoder() override;
  KvCacheDecoder(const KvCacheDecoder&) = delete;
  KvCacheDecoder& operator=(const KvCacheDecoder&) = delete;
  const ModelConfig& config() const override { return cfg_; }
  ModelWeights& weights() override { return weights_; }
  void forward(const int32_t* tokens, int n, int pos0, float* logits_host) override;

 protected:
  // A cache of kv_heads heads of head_dim per layer.
  KvCacheDecoder(const ModelFamily& family, const ModelConfig& cfg, KernelBackend& backend,
                 int kv_heads, int head_dim);

  KernelBackend& backend() { return be_; }
  TensorParallel& tp() { return tp_; }  // a group of one
  float* param(const std::string& name) { return weights_.param(name); }
  // Backend floats (zero-filled) that live as long as the decoder.
  float* alloc(size_t n);
  int max_rows() const { return cfg_.max_seq_len; }  // S: the most rows of one forward

  // --- What a family brings (C channels, S = max_seq_len) ---
  // resid [n,C] = the embedding of tokens [n] (backend memory) at positions pos0...
  virtual void embed_forward(float* resid, const int32_t* tokens, int n, int pos0) = 0;
  // resid [n,C] = block_layer(resid) in place, the attention appending the n new keys and
  // values to k_cache / v_cache [kv_heads,S,hd] and attending over positions 0..pos0+n-1.
  virtual void block_forward(int layer, float* resid, int n, int pos0, float* k_cache,
                             float* v_cache) = 0;
  // The final norm of one row [1,C]; returns the normed row (the family's buffer).
  virtual const float* final_norm_forward(const float* row) = 0;
  // The [Vp, C] tensor the LM head multiplies by.
  virtual const char* head_name() const = 0;

  ModelConfig cfg_;

 private:
  KernelBackend& be_;
  ModelWeights weights_;
  std::unique_ptr<Communicator> tp_comm_;
  TensorParallel tp_;
  size_t layer_cache_;  // kv_heads * S * hd: one layer's keys (or values)
  std::vector<void*> owned_;
  int32_t* tokens_;    // [S]
  float* resid_;       // [S,C] residual stream
  float* logits_dev_;  // [Vp]
  float* kv_cache_;    // [n_layer][2][kv_heads][S][hd]
};

}  // namespace shardlm
