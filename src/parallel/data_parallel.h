// Data parallelism: averaging gradients over the DP replicas, and ZeRO's sharding over them.
// This object owns the rules: the flat range [shard_begin, shard_end) this rank's optimizer
// owns, how gradients are reduced, how parameters come back, and which rank writes what to a
// checkpoint. The stages of ZeRO (Rajbhandari et al.), each adding to the one before:
//   0  gradients all-reduced (bucketed); every rank updates everything;
//   1  AdamW state sharded: gradients reduce-scattered into the rank's partition after the
//      pipeline, the partition updated, the parameters all-gathered;
//   2  gradients sharded: each parameter unit's (layer's) gradients are reduce-scattered
//      during backward, after every micro-batch's backward of that unit, into the owners'
//      accumulated partitions, and the unit's full gradients are dropped (backend release);
//   3  parameters sharded: a unit's parameters outside this rank's partition are dropped,
//      all-gathered before each forward/backward use of the unit and dropped after.
// What is not in a unit (embeddings, final norm, head, tied copies: their gradients are
// exchanged between pipeline stages first) is handled as in ZeRO-1 at every stage.
#pragma once

#include <cstddef>
#include <vector>

#include "parallel/comm.h"
#include "parallel/param_units.h"

namespace shardlm {

class KernelBackend;

class GradientSync : public ParamUnitHooks {
 public:
  // flat_size: elements of the flat parameter/gradient buffers, a multiple of dp * alignment
  // (padded_flat_size) so that partitions are equal and aligned. zero_stage: 0..3.
  GradientSync(Communicator& dp, KernelBackend& backend, size_t flat_size, int zero_stage);
  ~GradientSync() override;
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The flat buffer size that splits into dp equal partitions of whole `align` units.
  static size_t padded_flat_size(size_t total, int dp, size_t align);

  int zero_stage() const { return zero_stage_; }
  bool sharded() const { return zero_stage_ >= 1; }
  bool shards_gradients() const { return zero_stage_ >= 2; }
  bool shards_params() const { return zero_stage_ == 3; }
  size_t shard_begin() const { return begin_; }
  size_t shard_end() const { return end_; }

  // ZeRO-2/3: the flat buffers (flat_size elements, backend memory) and the stage's units
  // (sorted, disjoint). Must precede the hooks, begin_step and release_params.
  void bind(float* params, float* grads, std::vector<FlatRange> units);

  // Start of a step: zeroes the gradients (ZeRO-2/3: releases the whole gradient buffer and
  // zeroes the accumulated partition).
  void begin_step(float* grads);
  // Averages `grads` [flat_size] over DP. Without ZeRO every rank ends with the averaged
  // buffer; with ZeRO this rank's partition of the average lands in shard_grads() (ZeRO-2/3:
  // the units were reduced during backward, the rest is reduced now).
  void reduce(float* grads);
  // The averaged gradients of [shard_begin, shard_end): grads + shard_begin without ZeRO.
  const float* shard_grads(const float* grads) const;
  // Whether this rank's shard counts in the global gradient norm (DP replicas hold the same
  // averaged gradients without ZeRO, so only DP rank 0 counts them).
  bool counts_in_grad_norm() const { return sharded() || dp_.rank() == 0; }
  // After the optimizer updated [shard_begin, shard_end) of `params`: every rank gets the
  // others' updated partitions (ZeRO-1/2; ZeRO-3 only outside the units); a no-op without ZeRO.
  void gather_params(float* params);
  // ZeRO-3: drops the other ranks' parts of every unit (after initialisation or loading).
  void release_params(float* params);
  // All of `params` on every rank (ZeRO-3 inspection and tests; a full all-gather).
  void materialize_params(float* params);

  // ParamUnitHooks (ZeRO-2/3; no-ops below their stage).
  void before_use(int u) override;
  void after_forward(int u) override;
  void after_backward(int u) override;

  // Checkpoint ownership: without ZeRO-3 parameters are written by DP rank 0, with it by every
  // rank (its partition); AdamW moments by DP rank 0 without ZeRO, by every rank (its
  // partition) with it.
  bool writes_params() const { return shards_params() || dp_.rank() == 0; }
  bool writes_optimizer_state() const { return sharded() || dp_.rank() == 0; }

 private:
  // Per-rank element counts of `r` cut at the partition boundaries, and this rank's part.
  std::vector<size_t> split_counts(const FlatRange& r) const;
  FlatRange mine(const FlatRange& r) const;
  // Reduce-scatters grads[r] and adds this rank's part into the accumulated partition.
  void reduce_range_into_shard(const float* grads, const FlatRange& r);
  void gather_range(float* params, const FlatRange& r);
  void release_others(float* params, const FlatRange& r);
  // The flat ranges outside every unit (ZeRO-1-style handling).
  std::vector<FlatRange> outside_units() const;
  const FlatRange& unit(int u) const;

  Communicator& dp_;
  KernelBackend& be_;
  size_t flat_size_;
  int zero_stage_;
  size_t begin_ = 0, end_ = 0;
  float* grad_shard_ = nullptr;  // ZeRO: this rank's averaged gradient partition
  float* params_ = nullptr;      // bound buffers (ZeRO-2/3)
  float* grads_ = nullptr;
  std::vector<FlatRange> units_;
  float* received_ = nullptr;  // ZeRO-2/3: one unit's reduced part before it is accumulated
};

}  // namespace shardlm
