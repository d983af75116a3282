// GPT-2 training: one rank's pipeline stage as explicit forward/backward passes over kernels
// (no autograd). It holds its stage's blocks and its tensor-parallel shard of each; with tp = 1
// and one stage it is the whole model.
//
// Tensor parallelism follows Megatron (see block.h): a vocab-parallel embedding (partial
// lookups summed) and a vocab-parallel tied LM head + cross-entropy (no rank holds the full
// logits). Activations are kept per micro-batch slot; gradients accumulate (+=).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/gpt2/block.h"
#include "model/model.h"
#include "model/recompute.h"
#include "model/vocab_parallel.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

class Gpt2Stage final : public ModelStage {
 public:
  Gpt2Stage(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend,
            Communicator& tp, int B, int T, int slots, size_t flat_capacity, Recompute recompute);
  ~Gpt2Stage() override;  // Acts is complete only in the .cpp

  int slots() const override { return static_cast<int>(acts_.size()); }
  size_t boundary_numel() const override { return tokens_per_micro_batch() * cfg_.n_embd; }
  // Token and target ids are checked against the vocabulary (clear error, no crash).
  float forward(int slot, const int32_t* tokens, const int32_t* targets,
                const float* input) override;
  void backward(int slot, float loss_scale, const float* output_grad) override;
  const float* stage_output(int slot) const override;           // [B,T,C]
  const float* input_grad() const override { return dresid_; }  // [B,T,C]
  const float* logits(int slot) const override;                 // [B,T,Vp/tp]

 private:
  struct Acts;
  std::unique_ptr<Acts> make_acts();
  float head_forward(Acts& a);
  void head_backward(Acts& a, float loss_scale);

  TensorParallel tp_;
  BlockActivations block_acts_;  // kept or shared, by the recompute mode
  Gpt2Dims dims_;
  int H_local_, hd_;
  std::vector<std::unique_ptr<Acts>> acts_;
  // Backward scratch, shared by all slots (one backward at a time).
  float* dresid_ = nullptr;  // [N,C] gradient of the residual stream
  Gpt2BlockScratch scratch_{};
  float* recompute_out_ = nullptr;  // [N,C] full recomputation's block output (discarded)
};

// What a Gpt2Stage over `shard` with B x T micro-batches allocates for activations.
ActivationFootprint gpt2_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard, int B,
                                              int T);

}  // namespace shardlm
