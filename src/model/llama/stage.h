// Llama training: one rank's pipeline stage (blocks of its layer range, its TP shard of each),
// explicit forward/backward over kernels. Vocab-parallel embedding and head + cross-entropy
// (model/vocab_parallel.h); the head is lm_head, or embed_tokens when tied (then the last
// stage holds a tied copy and the trainer sums the two copies' gradients).
#pragma once

#include <memory>
#include <vector>

#include "model/llama/block.h"
#include "model/model.h"
#include "model/recompute.h"
#include "model/vocab_parallel.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

class LlamaStage final : public ModelStage {
 public:
  LlamaStage(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend,
             Communicator& tp, int B, int T, int slots, size_t flat_capacity, Recompute recompute);
  ~LlamaStage() override;  // Acts is complete only in the .cpp

  int slots() const override { return static_cast<int>(acts_.size()); }
  size_t boundary_numel() const override { return tokens_per_micro_batch() * cfg_.n_embd; }
  float forward(int slot, const int32_t* tokens, const int32_t* targets,
                const float* input) override;
  void backward(int slot, float loss_scale, const float* output_grad) override;
  const float* stage_output(int slot) const override;           // [B,T,C]
  const float* input_grad() const override { return dresid_; }  // [B,T,C]
  const float* logits(int slot) const override;                 // [B,T,Vp/tp]

 private:
  struct Acts;
  std::unique_ptr<Acts> make_acts();
  const char* head_name() const { return cfg_.tie_embeddings ? "embed_tokens" : "lm_head"; }
  float head_forward(Acts& a);
  void head_backward(Acts& a, float loss_scale);

  TensorParallel tp_;
  BlockActivations block_acts_;  // kept or shared, by the recompute mode
  LlamaDims dims_;
  std::vector<std::unique_ptr<Acts>> acts_;
  float* rope_cos_ = nullptr;  // [max_seq, hd/2]
  float* rope_sin_ = nullptr;  // [max_seq, hd/2]
  float* dresid_ = nullptr;    // [N,C] gradient of the residual stream
  LlamaBlockScratch scratch_{};
  float* recompute_out_ = nullptr;  // [N,C] full recomputation's block output (discarded)
};

// What a LlamaStage over `shard` with B x T micro-batches allocates for activations.
ActivationFootprint llama_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                               int B, int T);

}  // namespace shardlm
