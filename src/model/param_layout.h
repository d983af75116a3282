// The view table: every parameter tensor a rank owns, where it sits in the rank's flat buffers
// (parameters, gradients, AdamW moments and master weights all share this ordering), and which
// rectangle of the global tensor it is. Optimizer, DP reductions and checkpoints work on flat
// ranges; this table is what lets a checkpoint load into another layout.
//
// It is built from a family's tensor plan (tensor_plan.h) and the rank's ShardSpec: the plan's
// first-stage tensors, then the blocks this stage runs, then the last-stage tensors, then the
// tied copies the last stage holds when it is not also the first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tensor_plan.h"
#include "parallel/param_units.h"

namespace shardlm {

// What one rank owns of the model: its TP coordinate and its pipeline stage's layer range.
struct ShardSpec {
  int tp_rank = 0;
  int tp_size = 1;
  int layer_begin = 0;  // first block this stage runs
  int layer_end = 0;    // one past the last block
  bool first_stage = true;
  bool last_stage = true;
  static ShardSpec whole_model(const ModelConfig& cfg) {
    ShardSpec s;
    s.layer_end = cfg.n_layer;
    return s;
  }
};

struct TensorView {
  std::string name;                   // global tensor name
  std::vector<int64_t> global_shape;  // full tensor
  std::vector<int64_t> local_shape;   // this rank's block
  std::vector<int64_t> offset;        // block's corner in the global tensor
  size_t flat_offset = 0;             // elements from the start of the flat buffer
  size_t numel = 0;                   // elements of the local block
  bool tp_replicated = false;         // every TP rank holds the whole tensor
  bool weight_decay = false;          // AdamW decays it (the family's rule)
  // This rank's copy is the one that counts: in the global grad norm and in checkpoints.
  // False for TP-replicated tensors on tp_rank > 0 and for the last stage's tied copies.
  bool primary = true;
  // Held by both the first and the last pipeline stage (a tied tensor with pp > 1): its
  // gradient is summed between the two copies before the optimizer step.
  bool tied_across_stages = false;
};

class ParamLayout {
 public:
  ParamLayout() = default;
  ParamLayout(const TensorPlan& plan, const ShardSpec& shard);
  // The layout of cfg's family plan (cfg is validated first).
  ParamLayout(const ModelConfig& cfg, const ShardSpec& shard);

  const std::vector<TensorView>& views() const { return views_; }
  size_t total() const { return total_; }  // elements of the flat buffer
  // Throws if this rank does not own `name`.
  const TensorView& get(const std::string& name) const;
  const TensorView* find(const std::string& name) const;
  const ShardSpec& shard() const { return shard_; }

  // Flat buffers are padded so that every tensor starts on a 64-byte boundary.
  static constexpr size_t kAlign = 16;

 private:
  void add(const TensorSpec& spec, bool primary, bool tied);
  std::vector<TensorView> views_;
  size_t total_ = 0;
  ShardSpec shard_;
};

// The flat range of each of the layout's layers (its blocks, in order): the parameter units
// ZeRO-2/3 reduce and gather one at a time (parallel/param_units.h).
std::vector<FlatRange> layer_units(const ParamLayout& layout);

}  // namespace shardlm
