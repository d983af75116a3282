// What the pipeline, the trainer, the checkpoint glue and the benchmarks see of a model: one
// rank's pipeline stage of some family (model/family.h) — its weights (view table + flat
// buffers), forward/backward of a micro-batch slot, the stage's input/output and input
// gradient. Families implement the computation; nothing outside src/model/ names one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"
#include "model/family.h"
#include "model/param_layout.h"
#include "model/recompute.h"
#include "model/vocab_parallel.h"
#include "model/weights.h"
#include "parallel/param_units.h"
#include "parallel/pipeline.h"

namespace shardlm {

class ModelStage : public PipelineStage {
 public:
  ModelStage(const ModelFamily& family, const ModelConfig& cfg, const ShardSpec& shard,
             KernelBackend& backend, int B, int T, size_t flat_capacity,
             const StageStorage& storage = {});
  ~ModelStage() override;
  ModelStage(const ModelStage&) = delete;
  ModelStage& operator=(const ModelStage&) = delete;

  const ModelFamily& family() const { return family_; }
  const ModelConfig& config() const { return cfg_; }
  ModelWeights& weights() { return weights_; }
  const ParamLayout& layout() const { return weights_.layout(); }
  const ShardSpec& shard() const { return layout().shard(); }
  KernelBackend& backend() override { return weights_.backend(); }
  int batch() const { return B_; }
  int seq_len() const { return T_; }
  size_t tokens_per_micro_batch() const override { return static_cast<size_t>(B_) * T_; }
  size_t flat_capacity() const { return weights_.capacity(); }

  // Flat buffers (backend memory), flat_capacity() elements each (the tail past
  // layout().total() is padding that stays zero); throws where ZeRO-2/3 keep only part of
  // them (weights().param_buffer() / grad_buffer() then, or the layer spans).
  float* params() { return weights_.params(); }
  const float* params() const { return weights_.params(); }
  float* grads() { return weights_.grads(); }
  const float* grads() const { return weights_.grads(); }
  float* param(const std::string& name) { return weights_.param(name); }
  float* grad(const std::string& name) { return weights_.grad(name); }
  // Where global layer `layer`'s parameters / gradients are (in place, or a ZeRO window).
  FlatSpan layer_params(int layer) { return weights_.layer_params(layer - shard().layer_begin); }
  FlatSpan layer_grads(int layer) { return weights_.layer_grads(layer - shard().layer_begin); }

  // Bytes of block-internal activations (model/recompute.h) over all layers and slots: the
  // buffers kept per layer and slot, and those shared by all of them (refilled by
  // recomputation in backward). Block inputs and the head's activations are not counted.
  size_t kept_activation_bytes() const { return kept_activation_bytes_; }
  size_t shared_activation_bytes() const { return shared_activation_bytes_; }

  // ZeRO-2/3 (parallel/param_units.h): unit i is local layer i; the stage tells `hooks` before
  // a layer's parameters are read and after its forward and backward. Null: nobody to tell.
  void set_unit_hooks(ParamUnitHooks* hooks) { hooks_ = hooks; }
  // The flat range of each local layer's parameters, in order.
  std::vector<FlatRange> layer_units() const { return shardlm::layer_units(layout()); }

  void init_weights(uint64_t seed) { weights_.init(seed); }
  void zero_grads() { weights_.zero_grads(); }

  // Last stage, after forward: logits of this TP rank's vocabulary shard [B,T,Vp/tp]
  // (overwritten by backward, which computes dlogits in place).
  virtual const float* logits(int slot) const = 0;
  int vocab_start() const { return vocab_start_; }  // first vocabulary row of this TP rank
  int vocab_local() const { return vocab_local_; }  // vocabulary rows of this TP rank
  VocabShard vocab_shard() const { return {vocab_start_, vocab_local_, cfg_.vocab_size}; }

 protected:
  // Throws naming the position when an id is outside [0, vocab_size).
  void check_ids(const int32_t* ids, const char* what) const;
  // Backend buffers (zero-filled) that live as long as the stage.
  float* alloc_floats(size_t n);
  int32_t* alloc_ids(size_t n);
  // One micro-batch's ids [B,T] (host; `what`: "token" or "target") checked against the
  // vocabulary and copied to dst (backend memory).
  void upload_ids(int32_t* dst, const int32_t* ids, const char* what);
  // A neighbour stage's tensor (the input activation, or the output's gradient;
  // boundary_numel() elements, backend memory) copied to dst.
  void take_boundary(float* dst, const float* from, const char* what);
  void unit_before_use(int local_layer) {
    if (hooks_) hooks_->before_use(local_layer);
  }
  void unit_after_forward(int local_layer) {
    if (hooks_) hooks_->after_forward(local_layer);
  }
  void unit_after_backward(int local_layer) {
    if (hooks_) hooks_->after_backward(local_layer);
  }
  void set_activation_bytes(size_t kept, size_t shared) {
    kept_activation_bytes_ = kept;
    shared_activation_bytes_ = shared;
  }

  const ModelFamily& family_;
  ModelConfig cfg_;
  ModelWeights weights_;
  int B_, T_;
  int vocab_start_, vocab_local_;

 private:
  size_t kept_activation_bytes_ = 0, shared_activation_bytes_ = 0;
  ParamUnitHooks* hooks_ = nullptr;
  std::vector<void*> owned_;
};

// The family's stage for `cfg` (model_family(cfg.family).make_stage).
std::unique_ptr<ModelStage> make_model_stage(const ModelConfig& cfg, const ShardSpec& shard,
                                             KernelBackend& backend, Communicator& tp, int B, int T,
                                             int slots = 1, size_t flat_capacity = 0,
                                             Recompute recompute = Recompute::None,
                                             const StageStorage& storage = {});

}  // namespace shardlm
