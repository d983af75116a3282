// Data parallelism: averaging gradients over the DP replicas, and ZeRO's sharding over them.
// This object owns the rules: the flat range [shard_begin, shard_end) this rank's optimizer
// owns, how gradients are reduced, how parameters come back, and which rank writes what to a
// checkpoint. The stages of ZeRO (Rajbhandari et al.), each adding to the one before:
//   0  gradients all-reduced (bucketed); every rank updates everything;
//   1  AdamW state sharded: gradients reduce-scattered into the rank's partition after the
//      pipeline, the partition updated, the parameters all-gathered;
//   2  gradients sharded: each parameter unit's (layer's) gradients accumulate in one window
//      during that unit's backward and are reduce-scattered after every micro-batch's backward
//      of it into the owners' accumulated partitions; no rank allocates the full gradient
//      buffer (parallel/flat_buffer.h);
//   3  parameters sharded: a rank keeps only its partition of each unit, gathers the unit into
//      a window before each forward/backward use and lets the window go to the next unit after.
// What is not in a unit (embeddings, final norm, head, tied copies: their gradients are
// exchanged between pipeline stages first) is kept in full and handled as in ZeRO-1 at every
// stage.
#pragma once

#include <cstddef>
#include <vector>

#include "parallel/comm.h"
#include "parallel/flat_buffer.h"
#include "parallel/param_units.h"

namespace shardlm {

class KernelBackend;

class GradientSync : public ParamUnitHooks {
 public:
  // flat_size: elements of the flat parameter/gradient buffers, a multiple of dp * alignment
  // (padded_flat_size) so that partitions are equal and aligned. zero_stage: 0..3. units: the
  // stage's parameter units (sorted, disjoint; model/param_layout.h's layer_units).
  GradientSync(Communicator& dp, KernelBackend& backend, size_t flat_size, int zero_stage,
               std::vector<FlatRange> units);
  ~GradientSync() override;
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The flat buffer size that splits into dp equal partitions of whole `align` units.
  static size_t padded_flat_size(size_t total, int dp, size_t align);
  // The flat ranges of [0, flat_size) outside every unit (sorted, disjoint units): handled as
  // in ZeRO-1 at every stage.
  static std::vector<FlatRange> outside_units(size_t flat_size,
                                              const std::vector<FlatRange>& units);
  // DP rank `rank`'s partition of a flat buffer of flat_size elements (ZeRO's shard).
  static FlatRange partition(size_t flat_size, int dp, int rank);
  // What ZeRO stage `zero` keeps of the buffers, for the rank whose partition is `part`:
  // ZeRO-2/3 hold the units' gradients in a window, ZeRO-3 the units' parameters outside `part`.
  static StageStorage storage(int zero, const std::vector<FlatRange>& units, FlatRange part);
  // ZeRO-2/3: elements of the buffer a reduce-scattered unit arrives in before it is added to
  // the partition: the largest part of one inside `part`.
  static size_t receive_elements(const std::vector<FlatRange>& units, FlatRange part);

  int zero_stage() const { return zero_stage_; }
  bool sharded() const { return zero_stage_ >= 1; }
  bool shards_gradients() const { return zero_stage_ >= 2; }
  bool shards_params() const { return zero_stage_ == 3; }
  size_t shard_begin() const { return begin_; }
  size_t shard_end() const { return end_; }
  // This rank's storage (the stage's buffers must be made with it).
  StageStorage storage() const { return storage(zero_stage_, units_, {begin_, end_}); }

  // The stage's flat buffers (flat_size elements each, made with storage()). Must precede
  // everything below.
  void bind(FlatBuffer& params, FlatBuffer& grads);

  // Start of a step: zeroes the gradients (and with ZeRO the accumulated partition).
  void begin_step();
  // Averages the gradients over DP. Without ZeRO every rank ends with the averaged buffer;
  // with ZeRO this rank's partition of the average lands in shard_grads() (ZeRO-2/3: the units
  // were reduced during backward, the rest is reduced now).
  void reduce();
  // The averaged gradients of [shard_begin, shard_end).
  const float* shard_grads() const;
  // Whether this rank's shard counts in the global gradient norm (DP replicas hold the same
  // averaged gradients without ZeRO, so only DP rank 0 counts them).
  bool counts_in_grad_norm() const { return sharded() || dp_.rank() == 0; }
  // After the optimizer updated [shard_begin, shard_end) of the parameters: every rank gets
  // the others' updated partitions (ZeRO-1/2; ZeRO-3 only outside the units, which it gathers
  // when used); a no-op without ZeRO.
  void gather_params();

  // ParamUnitHooks (ZeRO-2/3; no-ops below their stage). before_use gives the windows to unit
  // u (ZeRO-3 gathers its parameters there); after_forward takes them back; after_backward
  // reduce-scatters the unit's gradients, clears the gradient window and takes both back.
  // Tests and inspection read a ZeRO-3 unit's parameters between before_use and after_forward.
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
  // Reduce-scatters r's gradients (at `grads`, r.size() elements) into this rank's partition:
  // added to it (a unit, once per micro-batch), or written there (a range outside the units,
  // reduced once per step, whose part of the partition nothing else writes).
  void reduce_range_into_shard(const float* grads, const FlatRange& r, bool accumulate);
  // All of r's parameters into `dest` (r.size() elements) from every rank's in-place part.
  void gather_range(float* dest, const FlatRange& r);
  const FlatRange& unit(int u) const;
  FlatBuffer& params() const;
  FlatBuffer& grads() const;

  Communicator& dp_;
  KernelBackend& be_;
  size_t flat_size_;
  int zero_stage_;
  std::vector<FlatRange> units_;
  std::vector<FlatRange> outside_;  // the flat ranges outside every unit
  size_t begin_ = 0, end_ = 0;
  float* grad_shard_ = nullptr;   // ZeRO: this rank's averaged gradient partition
  float* received_ = nullptr;     // ZeRO-2/3: one unit's reduced part before it is accumulated
  FlatBuffer* params_ = nullptr;  // bound buffers
  FlatBuffer* grads_ = nullptr;
};

}  // namespace shardlm
