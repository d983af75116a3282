// Llama with a KV cache for generation: the training block (block.h) with RoPE at the new
// positions and grouped-query attention against a cache of n_kv_head heads, then the final
// RMSNorm and the head on the last position only.
#pragma once

#include <memory>
#include <vector>

#include "model/decoder.h"
#include "model/llama/block.h"
#include "parallel/comm.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

class LlamaDecoder final : public CachedDecoder {
 public:
  LlamaDecoder(const ModelConfig& cfg, KernelBackend& backend);
  ~LlamaDecoder() override;
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
  LlamaDims dims_;  // N is the most rows of one forward (max_seq_len)
  int S_, Vp_;
  std::vector<void*> owned_;
  int32_t* tokens_;      // [S]
  float* resid_;         // [S,C]
  LlamaBlockActs acts_;  // per-sublayer buffers for S rows (norms share one, projections one)
  float* rope_cos_;      // [S, hd/2]
  float* rope_sin_;      // [S, hd/2]
  float* logits_dev_;    // [Vp]
  float* kv_cache_;      // [n_layer][2][KV][S][hd]
};

}  // namespace shardlm
