// The training stage of every family, written once: one rank's pipeline stage as explicit
// forward/backward passes over kernels (no autograd), its blocks of the layer range and its
// tensor-parallel shard of each (with tp = 1 and one stage it is the whole model):
//
//   first stage   resid[0]   = embed(tokens)                     (or the previous stage's output)
//   local layer i resid[i+1] = block_i(resid[i])
//   last stage    loss       = cross_entropy(head(final_norm(resid[n])), targets)
//
// and backward in reverse, each layer recomputed first as --recompute says (model/recompute.h)
// and bracketed by the ZeRO-2/3 unit hooks. The family brings the math through the hooks below
// (its embedding, block, final norm and head tensor); this class brings the loop, the
// micro-batch slots, the residual stream, the vocab-parallel head + cross-entropy
// (model/vocab_parallel.h: no rank holds the full logits) and the shared backward buffers.
// Activations are kept per micro-batch slot; gradients accumulate (+=).
#pragma once

#include <cstdint>
#include <vector>

#include "model/family.h"
#include "model/model.h"
#include "model/recompute.h"
#include "model/vocab_parallel.h"
#include "parallel/tensor_parallel.h"

namespace shardlm {

class TransformerStage : public ModelStage {
 public:
  int slots() const override { return static_cast<int>(slots_.size()); }
  size_t boundary_numel() const override { return tokens_per_micro_batch() * cfg_.n_embd; }
  // Token and target ids are checked against the vocabulary (clear error, no crash).
  float forward(int slot, const int32_t* tokens, const int32_t* targets,
                const float* input) override;
  void backward(int slot, float loss_scale, const float* output_grad) override;
  const float* stage_output(int slot) const override;           // [B,T,C]
  const float* input_grad() const override { return dresid_; }  // [B,T,C]
  const float* logits(int slot) const override;                 // [B,T,Vp/tp]

 protected:
  TransformerStage(const ModelFamily& family, const StageRequest& request);

  // The family's constructor calls this once its shapes are known: the request's micro-batch
  // slots (each through allocate_slot), then the shared backward buffers.
  void allocate_slots();

  TensorParallel& tp() { return tp_; }
  // Block activations kept or shared by the recompute mode.
  BlockActivations& block_activations() { return block_acts_; }
  // [N,C] gradient of a norm's output: the head's, and free for the family's block scratch.
  float* norm_output_grad() { return dnorm_; }
  int rows() const { return B_ * T_; }  // N = B*T
  int local_layer(int layer) const { return layer - shard().layer_begin; }

  // --- What a family brings (N = B*T rows, C channels; `layer` is the global index) ---
  // One more micro-batch slot's block activations, every local layer (from
  // block_activations()), and on the last stage the final norm's statistics.
  virtual void allocate_slot() = 0;
  // out [N,C] = the embedding of tokens [N] (backend memory), summed over the TP group.
  virtual void embed_forward(float* out, const int32_t* tokens) = 0;
  // The embedding's parameter gradients += from dresid [N,C].
  virtual void embed_backward(const float* dresid, const int32_t* tokens) = 0;
  // out [N,C] = block(in [N,C]) of micro-batch `slot`, writing the slot's layer activations.
  virtual void block_forward(int slot, int layer, const float* in, float* out) = 0;
  // Selective recomputation: refills the parts that mode dropped from the kept ones.
  virtual void block_recompute_selective(int slot, int layer) = 0;
  // dresid [N,C]: d(out) on entry, d(in) on return; parameter gradients +=.
  virtual void block_backward(int slot, int layer, const float* in, float* dresid) = 0;
  // out [N,C] = final_norm(in [N,C]), keeping the slot's statistics.
  virtual void final_norm_forward(int slot, const float* in, float* out) = 0;
  // din [N,C] += d(in) from dout [N,C]; the norm's parameter gradients +=.
  virtual void final_norm_backward(int slot, const float* in, const float* dout, float* din) = 0;
  // The [Vp, C] tensor the LM head multiplies by (the last stage's copy when tied).
  virtual const char* head_name() const = 0;

 private:
  // One micro-batch slot's activations outside the blocks.
  struct Slot {
    int32_t* tokens = nullptr;   // [N] (first stage)
    int32_t* targets = nullptr;  // [N] (last stage)
    std::vector<float*> resid;   // n_local + 1 of [N,C]: resid[i] = input of local layer i
    float* normed = nullptr;     // [N,C] final norm output (last stage)
    VocabLossBuffers loss{};     // logits [N,Vl] and the cross-entropy's per-row values
  };
  Slot& slot_at(int slot) { return slots_.at(static_cast<size_t>(slot)); }
  void head_backward(Slot& s, int slot, float loss_scale);

  TensorParallel tp_;
  BlockActivations block_acts_;
  int requested_slots_;
  std::vector<Slot> slots_;
  // Backward buffers, shared by all slots (one backward at a time).
  float* dresid_ = nullptr;         // [N,C] gradient of the residual stream
  float* dnorm_ = nullptr;          // [N,C] gradient of a norm's output
  float* recompute_out_ = nullptr;  // [N,C] full recomputation's block output (discarded)
};

// What TransformerStage itself allocates for activations over `shard` with B x T
// micro-batches: the block inputs, the slot's tokens, targets, stage output, final norm output
// and loss buffers, and the shared backward buffers. A family adds its block's activations,
// its final norm's statistics and its scratch.
ActivationFootprint transformer_stage_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                                int B, int T);

}  // namespace shardlm
