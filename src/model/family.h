// A model family (GPT-2 now, Llama next): everything that differs between families, behind
// one interface, so that the pipeline, trainer, checkpoint glue, generator and FLOP counter
// never name one. A family is a folder (model/gpt2/) that implements this and registers in
// family.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/param_layout.h"
#include "model/recompute.h"
#include "model/tensor_plan.h"
#include "parallel/flat_buffer.h"

namespace shardlm {

// Bytes a training stage allocates for its activations (ModelStage's own buffers), split by
// what activation recomputation could drop: the planner's activation model
// (plan/memory_model.h), checked exactly against the allocator in test_memory_model.
struct ActivationFootprint {
  // Per micro-batch slot and local layer:
  size_t layer_input = 0;  // the block input [N,C]: kept by every recompute mode
  size_t layer_cheap = 0;  // the attention's statistics and output, the MLP nonlinearity's
                           // output: what selective recomputation drops
  size_t layer_rest = 0;   // the block's other saved tensors: dropped by full recomputation
  // Per slot, outside the layers: tokens, targets, the stage output, final norm, logits.
  size_t slot_extra = 0;
  // Once per stage: the backward's gradient scratch, tables.
  size_t fixed = 0;
  // Once per stage with full recomputation only: the output its re-run block forward writes
  // (and discards, as the next layer's input is kept).
  size_t full_recompute_output = 0;
  size_t layer_total() const { return layer_input + layer_cheap + layer_rest; }
};

class KernelBackend;
class Communicator;
class ModelStage;
class CachedDecoder;

// What a training stage is built for (ModelFamily::make_stage): one rank's `shard` of `cfg`,
// B x T micro-batches with `slots` of them in flight, flat buffers of at least flat_capacity
// elements (ZeRO pads them), activations kept or recomputed by `recompute`
// (model/recompute.h), tensor parallelism over `tp`, the flat buffers stored as `storage` says.
struct StageRequest {
  const ModelConfig& cfg;
  const ShardSpec& shard;
  KernelBackend& backend;
  Communicator& tp;
  int B, T, slots;
  size_t flat_capacity;
  Recompute recompute;
  StageStorage storage;  // what the flat buffers keep (ZeRO-2/3: GradientSync::storage)
};

class ModelFamily {
 public:
  virtual ~ModelFamily() = default;
  virtual std::string name() const = 0;  // the [model] family key, e.g. "gpt2"
  virtual std::vector<std::pair<std::string, ModelConfig>> presets() const = 0;

  // Family-specific checks of a config whose generic fields are already valid; throws naming
  // the field.
  virtual void validate(const ModelConfig& cfg) const = 0;
  // Every global parameter tensor (tensor_plan.h).
  virtual TensorPlan tensor_plan(const ModelConfig& cfg) const = 0;
  // Fills `out` (view.numel floats: a rank's block of the tensor) with initial values that are
  // a pure function of (seed, tensor name, global element index), so that every layout starts
  // from the same global weights.
  virtual void init_tensor(float* out, const TensorView& view, const ModelConfig& cfg,
                           uint64_t seed) const = 0;
  virtual int64_t num_parameters(const ModelConfig& cfg) const = 0;
  // Model FLOPs per trained token (forward + backward) at sequence length T: the one
  // definition behind MFU and the benchmarks' GFLOP/s.
  virtual double flops_per_token(const ModelConfig& cfg, int T) const = 0;
  // What keeps `tp` tensor-parallel ranks from splitting this model ("n_head 6 is not
  // divisible by tp"), or "" when they can.
  virtual std::string tensor_parallel_problem(const ModelConfig& cfg, int tp) const = 0;
  // What make_stage({cfg, shard, ..., B, T, ...}) allocates for activations (bytes).
  virtual ActivationFootprint activation_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                                   int B, int T) const = 0;

  // One rank's pipeline stage for training, as `request` says.
  virtual std::unique_ptr<ModelStage> make_stage(const StageRequest& request) const = 0;
  // The whole model on one rank with a KV cache, for generation.
  virtual std::unique_ptr<CachedDecoder> make_decoder(const ModelConfig& cfg,
                                                      KernelBackend& backend) const = 0;
};

// The family called `name`; throws listing the known families.
const ModelFamily& model_family(const std::string& name);
const std::vector<const ModelFamily*>& model_families();

}  // namespace shardlm
