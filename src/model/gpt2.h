// The GPT-2 transformer as explicit forward/backward passes over kernels (no autograd).
// One instance holds what one rank owns: its pipeline stage's blocks and its tensor-parallel
// shard of each (see param_layout.h). With tp = 1 and one stage it is the whole model.
//
// Tensor parallelism follows Megatron: column-parallel c_attn / c_fc (their inputs are
// "copied" to every TP rank, so their input gradients are all-reduced in backward),
// row-parallel c_proj's (partial outputs all-reduced in forward), a vocab-parallel embedding
// (partial lookups all-reduced) and a vocab-parallel LM head + cross-entropy (no rank holds the
// full logits). Row-parallel biases are added by TP rank 0 only, before the all-reduce.
//
// Activations are kept per micro-batch "slot" so a pipeline schedule can have several
// micro-batches in flight; gradients accumulate (+=) over micro-batches.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/param_layout.h"
#include "parallel/comm.h"

namespace shardlm {

class GPT2 {
 public:
  // B, T: micro-batch size and sequence length every forward uses; slots: micro-batches that
  // may be in flight at once (1 without pipelining); flat_capacity: elements allocated for the
  // flat parameter/gradient buffers, at least layout().total() (ZeRO-1 pads to a multiple of dp).
  GPT2(const ModelConfig& cfg, const ShardSpec& shard, KernelBackend& backend, Communicator& tp,
       int B, int T, int slots = 1, size_t flat_capacity = 0);
  ~GPT2();
  GPT2(const GPT2&) = delete;
  GPT2& operator=(const GPT2&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  const ShardSpec& shard() const { return layout_.shard(); }
  KernelBackend& backend() { return be_; }
  int batch() const { return B_; }
  int seq_len() const { return T_; }
  int slots() const { return static_cast<int>(acts_.size()); }
  size_t flat_capacity() const { return flat_capacity_; }

  // Flat buffers (backend memory), flat_capacity() elements each (the tail past
  // layout().total() is padding that stays zero).
  float* params() { return params_; }
  const float* params() const { return params_; }
  float* grads() { return grads_; }
  const float* grads() const { return grads_; }
  float* param(const std::string& name) { return params_ + layout_.get(name).flat_offset; }
  float* grad(const std::string& name) { return grads_ + layout_.get(name).flat_offset; }

  // GPT-2 initialisation. Each element's value is a pure function of (seed, tensor name,
  // global element index), so every layout starts from the same global weights.
  void init_weights(uint64_t seed);
  void zero_grads();

  // Forward of this stage for one micro-batch.
  //  first stage: tokens [B,T] (host memory); otherwise input [B,T,C] (backend memory).
  //  last stage:  targets [B,T] (host) -> returns the mean loss over B*T; otherwise returns 0
  //               and the stage output is stage_output(slot).
  // Token and target ids are checked against the vocabulary (clear error, no crash).
  float forward(int slot, const int32_t* tokens, const int32_t* targets, const float* input);
  // Backward of this stage for the micro-batch in `slot` (after its forward).
  //  last stage: starts from loss_scale * d(mean loss); otherwise from output_grad [B,T,C].
  //  Parameter gradients accumulate. On a non-first stage, input_grad() then holds d(input).
  void backward(int slot, float loss_scale, const float* output_grad);

  const float* stage_output(int slot) const;           // [B,T,C]
  const float* input_grad() const { return dresid_; }  // [B,T,C]
  // Last stage, after forward: logits of this TP rank's vocabulary shard [B,T,Vp/tp].
  // (Overwritten by backward, which computes dlogits in place.)
  const float* logits(int slot) const;
  int vocab_start() const { return vocab_start_; }
  int vocab_local() const { return vocab_local_; }

 private:
  struct LayerActs;
  struct Acts;
  void check_ids(const int32_t* ids, const char* what) const;
  void layer_forward(int l, Acts& a);
  void layer_backward(int l, Acts& a);

  ModelConfig cfg_;
  ParamLayout layout_;
  KernelBackend& be_;
  Communicator& tp_;
  int B_, T_;
  int C_, H_local_, hd_, F_local_;  // F = 4C (MLP hidden), local shares over TP
  int vocab_start_, vocab_local_;
  size_t flat_capacity_ = 0;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  std::vector<std::unique_ptr<Acts>> acts_;
  // Backward scratch, shared by all slots (one backward at a time).
  float* dresid_ = nullptr;    // [N,C] gradient of the residual stream
  float* dln_ = nullptr;       // [N,C]
  float* dqkv_ = nullptr;      // [N,3C/tp]
  float* datty_ = nullptr;     // [N,C/tp]
  float* dfc_ = nullptr;       // [N,4C/tp]
  float* dfc_gelu_ = nullptr;  // [N,4C/tp]
  float* datt_ = nullptr;      // [B,NH/tp,T,T]
};

}  // namespace shardlm
