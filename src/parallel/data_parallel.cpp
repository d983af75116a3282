#include "parallel/data_parallel.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/host_staging.h"

namespace shardlm {

size_t GradientSync::padded_flat_size(size_t total, int dp, size_t align) {
  const size_t unit = static_cast<size_t>(dp) * align;
  return (total + unit - 1) / unit * unit;
}

GradientSync::GradientSync(Communicator& dp, KernelBackend& backend, size_t flat_size,
                           int zero_stage)
    : dp_(dp), be_(backend), flat_size_(flat_size), zero_stage_(zero_stage) {
  if (zero_stage != 0 && zero_stage != 1)
    fail("ZeRO stage must be 0 or 1, got " + std::to_string(zero_stage));
  const auto D = static_cast<size_t>(dp.size());
  SHARDLM_CHECK(flat_size % D == 0, "flat buffer does not split into dp partitions");
  if (sharded()) {
    const size_t part = flat_size / D;
    begin_ = part * static_cast<size_t>(dp.rank());
    end_ = begin_ + part;
    grad_shard_ = be_.alloc_floats(part, MemoryRole::Gradients);
  } else {
    end_ = flat_size;
  }
}

GradientSync::~GradientSync() {
  if (grad_shard_) be_.free_memory(grad_shard_);
}

void GradientSync::reduce(float* grads) {
  const int D = dp_.size();
  const float inv = 1.0f / static_cast<float>(D);
  // ZeRO-1 always fills this rank's gradient shard (with dp = 1 the reduce-scatter is a copy).
  if (sharded()) {
    const size_t part = end_ - begin_;
    dp_.reduce_scatter(grads, grad_shard_, part, DType::F32, ReduceOp::Sum);
    be_.scale_inplace(grad_shard_, inv, part);
    return;
  }
  if (D == 1) return;
  // Bucketed all-reduce: bounded message sizes, averaged.
  constexpr size_t kBucket = size_t{1} << 24;
  for (size_t off = 0; off < flat_size_; off += kBucket) {
    const size_t n = std::min(kBucket, flat_size_ - off);
    dp_.all_reduce(grads + off, n, DType::F32, ReduceOp::Sum);
  }
  be_.scale_inplace(grads, inv, flat_size_);
}

const float* GradientSync::shard_grads(const float* grads) const {
  return sharded() ? grad_shard_ : grads + begin_;
}

void GradientSync::gather_params(float* params) {
  if (!sharded()) return;
  const size_t part = end_ - begin_;
  // The send block is copied out first because it lies inside the receive buffer.
  const HostStaged own(be_, params + begin_, part);
  std::vector<float> mine(own.data(), own.data() + part);
  HostStaged all(be_, params, flat_size_, HostStaged::Mode::Write);
  dp_.all_gather(mine.data(), all.data(), part, DType::F32);
  all.flush();
}

}  // namespace shardlm
