// GPT-2 with a KV cache for generation: the same block as training (block.h) with attention
// against the cache, then the final LayerNorm and the tied head on the last position only.
#pragma once

#include <memory>
#include <vector>

#include "model/decoder.h"
#include "model/gpt2/block.h"
#include "parallel/comm.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

class Gpt2Decoder final : public CachedDecoder {
 public:
  Gpt2Decoder(const ModelConfig& cfg, KernelBackend& backend);
  ~Gpt2Decoder() override;
  const ModelConfig& config() const override { return cfg_; }
  ModelWeights& weights() override { return weights_; }
  void forward(const int32_t* tokens, int n, int pos0, float* logits_host) override;

 private:
  float* alloc(size_t n);
  void block_forward(int layer, int n, int pos0);

  ModelConfig cfg_;
  KernelBackend& be_;
  ModelWeights weights_;
  std::unique_ptr<Communicator> tp_comm_;  // a group of one
  TensorParallel tp_;
  int C_, NH_, hd_, Vp_, S_;  // channels, heads, head size, padded vocabulary, max_seq_len
  std::vector<void*> owned_;
  // Backend buffers for up to S_ rows (a full-length prefill).
  int32_t* tokens_;     // [S]
  float* resid_;        // [S,C] residual stream
  Gpt2BlockActs acts_;  // ln [S,C] (ln_1 and ln_2), qkv [S,3C], atty [S,C], proj [S,C]
                        // (both c_proj outputs), resid2 [S,C], fc/fc_gelu [S,4C]
  float* logits_dev_;   // [Vp]
  float* kv_cache_;     // [n_layer][2][NH][S][hd]
};

}  // namespace shardlm
