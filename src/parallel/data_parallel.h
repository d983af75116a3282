// Data parallelism: averaging gradients over the DP replicas, and ZeRO-1's sharding of the
// optimizer state. This object owns the rules: the flat range [shard_begin, shard_end) whose
// AdamW state this rank holds, how gradients are reduced (bucketed all-reduce, or
// reduce-scatter into the shard with ZeRO-1), how updated parameters come back (ZeRO-1's
// all-gather), and which rank writes what to a checkpoint.
#pragma once

#include <cstddef>

#include "parallel/comm.h"

namespace shardlm {

class KernelBackend;

class GradientSync {
 public:
  // flat_size: elements of the flat parameter/gradient buffers, a multiple of dp * alignment
  // (padded_flat_size) so that ZeRO-1 partitions are equal and aligned. zero_stage: 0 or 1.
  GradientSync(Communicator& dp, KernelBackend& backend, size_t flat_size, int zero_stage);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The flat buffer size that splits into dp equal partitions of whole `align` units.
  static size_t padded_flat_size(size_t total, int dp, size_t align);

  bool sharded() const { return zero_stage_ == 1; }
  size_t shard_begin() const { return begin_; }
  size_t shard_end() const { return end_; }

  // Averages `grads` [flat_size] over DP. Without ZeRO every rank ends with the averaged
  // buffer; with ZeRO-1 this rank's partition of the average lands in shard_grads().
  void reduce(float* grads);
  // The averaged gradients of [shard_begin, shard_end): grads + shard_begin without ZeRO.
  const float* shard_grads(const float* grads) const;
  // Whether this rank's shard counts in the global gradient norm (DP replicas hold the same
  // averaged gradients without ZeRO, so only DP rank 0 counts them).
  bool counts_in_grad_norm() const { return sharded() || dp_.rank() == 0; }
  // After the optimizer updated [shard_begin, shard_end) of `params`: every rank gets the
  // others' updated partitions (ZeRO-1); a no-op without ZeRO.
  void gather_params(float* params);

  // Checkpoint ownership: parameters are written by DP rank 0; AdamW moments by DP rank 0
  // without ZeRO, by every rank (its partition) with ZeRO-1.
  bool writes_params() const { return dp_.rank() == 0; }
  bool writes_optimizer_state() const { return sharded() || dp_.rank() == 0; }

 private:
  Communicator& dp_;
  KernelBackend& be_;
  size_t flat_size_;
  int zero_stage_;
  size_t begin_ = 0, end_ = 0;
  float* grad_shard_ = nullptr;  // ZeRO-1: this rank's averaged gradient partition
};

}  // namespace shardlm
