// Megatron's tensor-parallel operators, named as Megatron-Core and picotron name them. A
// column-parallel linear layer's input is "copied to the TP region" (f: identity forward,
// all-reduce of the input gradient backward); a row-parallel layer's partial outputs are
// "reduced from the TP region" (g: all-reduce forward, identity backward). f and g are
// conjugate, so a model calls g's forward where it sums partial outputs and f's backward where
// it sums partial input gradients, and nothing else. With tp = 1 every operator is a no-op.
#pragma once

#include <cstddef>

#include "parallel/comm.h"

namespace shardlm {

class TensorParallel {
 public:
  explicit TensorParallel(Communicator& tp) : tp_(tp) {}

  int rank() const { return tp_.rank(); }
  int size() const { return tp_.size(); }
  Communicator& comm() { return tp_; }

  // f backward: the gradient of a copied input, summed over the TP ranks (in place).
  void copy_to_region_backward(float* dinput, size_t n) { sum(dinput, n); }
  // g forward: the partial outputs of a row-parallel layer (or a vocab-parallel lookup),
  // summed over the TP ranks (in place).
  void reduce_from_region(float* partial, size_t n) { sum(partial, n); }
  // Vocab-parallel softmax: per-row maxima and sums over every rank's vocabulary shard.
  void max_over_vocab(float* row_max, size_t n) { reduce(row_max, n, ReduceOp::Max); }
  void sum_over_vocab(float* partial, size_t n) { sum(partial, n); }

 private:
  void sum(float* x, size_t n) { reduce(x, n, ReduceOp::Sum); }
  void reduce(float* x, size_t n, ReduceOp op) {
    if (tp_.size() > 1) tp_.all_reduce(x, n, DType::F32, op);
  }
  Communicator& tp_;
};

}  // namespace shardlm
