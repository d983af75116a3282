#include "parallel/data_parallel.h"

#include <algorithm>
#include <string>
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
  if (zero_stage < 0 || zero_stage > 3)
    fail("ZeRO stage must be 0, 1, 2 or 3, got " + std::to_string(zero_stage));
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
  if (received_) be_.free_memory(received_);
}

void GradientSync::bind(float* params, float* grads, std::vector<FlatRange> units) {
  for (size_t i = 0; i < units.size(); ++i) {
    SHARDLM_CHECK(units[i].begin <= units[i].end && units[i].end <= flat_size_,
                  "parameter unit " + std::to_string(i) + " is outside the flat buffer");
    SHARDLM_CHECK(i == 0 || units[i - 1].end <= units[i].begin,
                  "parameter units must be sorted and disjoint");
  }
  params_ = params;
  grads_ = grads;
  units_ = std::move(units);
  if (!shards_gradients() || received_) return;
  size_t most = 0;  // the largest part of a unit (or of the rest) that this rank owns
  for (const FlatRange& r : units_) most = std::max(most, mine(r).size());
  for (const FlatRange& r : outside_units()) most = std::max(most, mine(r).size());
  received_ = be_.alloc_floats(most);
}

const FlatRange& GradientSync::unit(int u) const {
  SHARDLM_CHECK(params_ != nullptr, "GradientSync: bind() before the unit hooks");
  return units_.at(static_cast<size_t>(u));
}

std::vector<size_t> GradientSync::split_counts(const FlatRange& r) const {
  const size_t part = flat_size_ / static_cast<size_t>(dp_.size());
  std::vector<size_t> counts;
  for (int q = 0; q < dp_.size(); ++q) {
    const size_t lo = std::max(r.begin, part * static_cast<size_t>(q));
    const size_t hi = std::min(r.end, part * static_cast<size_t>(q + 1));
    counts.push_back(hi > lo ? hi - lo : 0);
  }
  return counts;
}

FlatRange GradientSync::mine(const FlatRange& r) const {
  const size_t lo = std::max(r.begin, begin_), hi = std::min(r.end, end_);
  return hi > lo ? FlatRange{lo, hi} : FlatRange{lo, lo};
}

std::vector<FlatRange> GradientSync::outside_units() const {
  std::vector<FlatRange> out;
  size_t at = 0;
  for (const FlatRange& r : units_) {
    if (r.begin > at) out.push_back({at, r.begin});
    at = r.end;
  }
  if (at < flat_size_) out.push_back({at, flat_size_});
  return out;
}

void GradientSync::reduce_range_into_shard(const float* grads, const FlatRange& r) {
  const FlatRange m = mine(r);
  const HostStaged send(be_, grads + r.begin, r.size());
  HostStaged recv(be_, received_, m.size(), HostStaged::Mode::Write);
  dp_.reduce_scatter_v(send.data(), recv.data(), split_counts(r), DType::F32, ReduceOp::Sum);
  recv.flush();
  if (m.size() != 0) be_.add_inplace(grad_shard_ + (m.begin - begin_), received_, m.size());
}

void GradientSync::gather_range(float* params, const FlatRange& r) {
  const FlatRange m = mine(r);
  // The send block is copied out first because it lies inside the receive buffer.
  const HostStaged own(be_, params + m.begin, m.size());
  std::vector<float> send(own.data(), own.data() + m.size());
  HostStaged all(be_, params + r.begin, r.size(), HostStaged::Mode::Write);
  dp_.all_gather_v(send.data(), all.data(), split_counts(r), DType::F32);
  all.flush();
}

void GradientSync::release_others(float* params, const FlatRange& r) {
  const FlatRange m = mine(r);
  if (m.begin > r.begin) be_.release(params + r.begin, m.begin - r.begin);
  if (r.end > m.end) be_.release(params + m.end, r.end - m.end);
}

void GradientSync::begin_step(float* grads) {
  if (!shards_gradients()) {
    be_.fill_zero(grads, flat_size_);
    return;
  }
  be_.release(grads, flat_size_);
  be_.fill_zero(grad_shard_, end_ - begin_);
}

void GradientSync::reduce(float* grads) {
  const int D = dp_.size();
  const float inv = 1.0f / static_cast<float>(D);
  if (shards_gradients()) {
    // The units were reduced during backward; the rest now (after the tied-tensor exchange).
    for (const FlatRange& r : outside_units()) {
      reduce_range_into_shard(grads, r);
      be_.release(grads + r.begin, r.size());
    }
    be_.scale_inplace(grad_shard_, inv, end_ - begin_);
    return;
  }
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
  if (shards_params()) {  // units are gathered when used
    for (const FlatRange& r : outside_units()) gather_range(params, r);
    return;
  }
  gather_range(params, {0, flat_size_});
}

void GradientSync::release_params(float* params) {
  if (!shards_params()) return;
  for (const FlatRange& r : units_) release_others(params, r);
}

void GradientSync::materialize_params(float* params) {
  if (!shards_params()) return;
  for (const FlatRange& r : units_) gather_range(params, r);
}

void GradientSync::before_use(int u) {
  if (shards_params()) gather_range(params_, unit(u));
}

void GradientSync::after_forward(int u) {
  if (shards_params()) release_others(params_, unit(u));
}

void GradientSync::after_backward(int u) {
  if (!shards_gradients()) return;
  const FlatRange& r = unit(u);
  reduce_range_into_shard(grads_, r);
  be_.release(grads_ + r.begin, r.size());
  if (shards_params()) release_others(params_, r);
}

}  // namespace shardlm
