// One optimizer step of data x tensor x pipeline parallel training, and evaluation.
//
// A step: every DP rank runs `micro_batches` micro-batches of `micro_batch` sequences through
// its pipeline (1F1B when pp > 1), accumulating gradients; tied tensors' two copies (first and
// last stage) are summed; gradients are averaged over DP (parallel/data_parallel.h: all-reduce,
// or reduce-scatter with ZeRO, per layer during backward with ZeRO-2/3); the global gradient
// norm is computed counting every parameter once; AdamW updates (each DP rank only its shard
// under ZeRO, followed by an all-gather; ZeRO-3 gathers a layer's parameters when it is used).
// The model is whatever family settings.model names (model/family.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "parallel/data_parallel.h"
#include "parallel/mesh.h"
#include "parallel/pipeline.h"

namespace shardlm {

struct TrainSettings {
  ModelConfig model;
  int micro_batch = 1;    // sequences per micro-batch (B)
  int seq_len = 0;        // T
  int micro_batches = 1;  // per DP rank per step (gradient accumulation)
  OptimizerConfig optim;
  uint64_t seed = 1337;
  int zero_stage = 0;                     // 0..3 (parallel/data_parallel.h)
  Recompute recompute = Recompute::None;  // model/recompute.h
  std::vector<int> pipeline_layers;       // layers per stage; empty = even split (see pipeline.h)
};

// Fills `count` samples starting at global sample index `first`: tokens/targets [count, T].
using BatchSource =
    std::function<void(uint64_t first, int count, int32_t* tokens, int32_t* targets)>;

struct StepResult {
  double loss = 0.0;       // mean over the global batch (same on every rank)
  double grad_norm = 0.0;  // before clipping
  float lr = 0.0f;
  bool clipped = false;
  bool skipped = false;  // non-finite loss or gradients: no update was made
};

class Trainer {
 public:
  Trainer(const TrainSettings& settings, Mesh& mesh, KernelBackend& backend);
  ~Trainer();

  // One optimizer step at 0-based `step` (it sets the learning rate and bias correction);
  // reads the global samples [first_sample, first_sample + samples_per_step()) from `data`,
  // each DP rank its part. A non-finite loss or gradient norm (the same on every rank) throws
  // an Error naming the step, or with skip_non_finite leaves the weights untouched and
  // returns with `skipped` set.
  StepResult train_step(int step, uint64_t first_sample, const BatchSource& data,
                        bool skip_non_finite = false);
  // The same with first_sample = step * samples_per_step().
  StepResult train_step(int step, const BatchSource& data) {
    return train_step(step, static_cast<uint64_t>(step) * samples_per_step(), data);
  }
  // Called by train_step right before it changes the parameters or AdamW moments (the update
  // and ZeRO's parameter gather), on the training thread: --async-save waits there for its
  // snapshot copy, which a background thread takes while forward and backward only read them.
  // Empty: none.
  void set_before_update(std::function<void()> hook) { before_update_ = std::move(hook); }
  // Mean loss over `batches` micro-batch rounds starting at global sample `first` (no update).
  double evaluate(uint64_t first, int batches, const BatchSource& data);

  uint64_t samples_per_step() const;
  ModelStage& model() { return *model_; }
  AdamW& optimizer() { return *optimizer_; }
  GradientSync& gradient_sync() { return *grad_sync_; }
  Mesh& mesh() { return mesh_; }
  Pipeline& pipeline() { return *pipeline_; }
  const TrainSettings& settings() const { return settings_; }
  // The flat range of parameters this rank's optimizer updates (all of it without ZeRO).
  size_t shard_begin() const { return grad_sync_->shard_begin(); }
  size_t shard_end() const { return grad_sync_->shard_end(); }

 private:
  // Forward+backward over all micro-batches (backward skipped when train is false); returns
  // the summed micro-batch losses on the last stage (0 elsewhere).
  double run_micro_batches(uint64_t first_sample, const BatchSource& data, bool train);
  void sync_tied_tensors();
  double global_grad_norm();
  double average_loss(double local_loss_sum, int micro_batches);

  TrainSettings settings_;
  Mesh& mesh_;
  KernelBackend& be_;
  std::unique_ptr<ModelStage> model_;
  std::unique_ptr<GradientSync> grad_sync_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<Pipeline> pipeline_;
  std::function<void()> before_update_;
};

// Refuses, with a message naming the values, layouts that do not divide the model (the batch,
// sequence length and ZeRO stage are run settings: train/resolve_run_config.h checks them).
void validate_layout(const TrainSettings& settings, const MeshShape& shape);

}  // namespace shardlm
