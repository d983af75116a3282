#include "parallel/data_parallel.h"

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/host_staging.h"

namespace shardlm {

namespace {

FlatRange overlap(const FlatRange& r, const FlatRange& part) {
  const size_t lo = std::max(r.begin, part.begin), hi = std::min(r.end, part.end);
  return hi > lo ? FlatRange{lo, hi} : FlatRange{lo, lo};
}

}  // namespace

std::vector<FlatRange> GradientSync::outside_units(size_t flat_size,
                                                   const std::vector<FlatRange>& units) {
  std::vector<FlatRange> out;
  size_t at = 0;
  for (const FlatRange& r : units) {
    if (r.begin > at) out.push_back({at, r.begin});
    at = r.end;
  }
  if (at < flat_size) out.push_back({at, flat_size});
  return out;
}

size_t GradientSync::padded_flat_size(size_t total, int dp, size_t align) {
  const size_t unit = static_cast<size_t>(dp) * align;
  return (total + unit - 1) / unit * unit;
}

FlatRange GradientSync::partition(size_t flat_size, int dp, int rank) {
  const size_t part = flat_size / static_cast<size_t>(dp);
  return {part * static_cast<size_t>(rank), part * static_cast<size_t>(rank + 1)};
}

StageStorage GradientSync::storage(int zero, const std::vector<FlatRange>& units, FlatRange part) {
  StageStorage s;
  if (zero >= 2) s.grads.windowed = units;  // the partition lives in the gradient shard
  if (zero == 3) s.params = {units, part};
  return s;
}

size_t GradientSync::receive_elements(const std::vector<FlatRange>& units, FlatRange part) {
  size_t most = 0;
  for (const FlatRange& r : units) most = std::max(most, overlap(r, part).size());
  return most;
}

GradientSync::GradientSync(Communicator& dp, KernelBackend& backend, size_t flat_size,
                           int zero_stage, std::vector<FlatRange> units)
    : dp_(dp),
      be_(backend),
      flat_size_(flat_size),
      zero_stage_(zero_stage),
      units_(std::move(units)) {
  if (zero_stage < 0 || zero_stage > 3)
    fail("ZeRO stage must be 0, 1, 2 or 3, got " + std::to_string(zero_stage));
  SHARDLM_CHECK(flat_size % static_cast<size_t>(dp.size()) == 0,
                "flat buffer does not split into dp partitions");
  for (size_t i = 0; i < units_.size(); ++i) {
    SHARDLM_CHECK(units_[i].begin <= units_[i].end && units_[i].end <= flat_size_,
                  "parameter unit " + std::to_string(i) + " is outside the flat buffer");
    SHARDLM_CHECK(i == 0 || units_[i - 1].end <= units_[i].begin,
                  "parameter units must be sorted and disjoint");
  }
  outside_ = outside_units(flat_size_, units_);
  const FlatRange part = partition(flat_size, dp.size(), dp.rank());
  if (sharded()) {
    begin_ = part.begin;
    end_ = part.end;
    grad_shard_ = be_.alloc_floats(end_ - begin_, MemoryRole::Gradients);
  } else {
    end_ = flat_size;
  }
  if (shards_gradients())
    received_ = be_.alloc_floats(receive_elements(units_, part), MemoryRole::Communication);
}

GradientSync::~GradientSync() {
  if (grad_shard_) be_.free_memory(grad_shard_);
  if (received_) be_.free_memory(received_);
}

void GradientSync::bind(FlatBuffer& params, FlatBuffer& grads) {
  SHARDLM_CHECK(params.size() == flat_size_ && grads.size() == flat_size_,
                "GradientSync: the bound buffers are not of the flat size");
  params_ = &params;
  grads_ = &grads;
}

FlatBuffer& GradientSync::params() const {
  SHARDLM_CHECK(params_ != nullptr, "GradientSync: bind() the stage's buffers first");
  return *params_;
}

FlatBuffer& GradientSync::grads() const {
  SHARDLM_CHECK(grads_ != nullptr, "GradientSync: bind() the stage's buffers first");
  return *grads_;
}

const FlatRange& GradientSync::unit(int u) const {
  SHARDLM_CHECK(u >= 0 && static_cast<size_t>(u) < units_.size(),
                "parameter unit " + std::to_string(u) + " of " + std::to_string(units_.size()));
  return units_[static_cast<size_t>(u)];
}

std::vector<size_t> GradientSync::split_counts(const FlatRange& r) const {
  std::vector<size_t> counts;
  for (int q = 0; q < dp_.size(); ++q)
    counts.push_back(overlap(r, partition(flat_size_, dp_.size(), q)).size());
  return counts;
}

FlatRange GradientSync::mine(const FlatRange& r) const {
  return overlap(r, {begin_, end_});
}

void GradientSync::reduce_range_into_shard(const float* grads, const FlatRange& r,
                                           bool accumulate) {
  const FlatRange m = mine(r);
  float* part = grad_shard_ + (m.begin - begin_);
  const HostStaged send(be_, grads, r.size());
  HostStaged recv(be_, accumulate ? received_ : part, m.size(), HostStaged::Mode::Write);
  dp_.reduce_scatter_v(send.data(), recv.data(), split_counts(r), DType::F32, ReduceOp::Sum);
  recv.flush();
  if (accumulate && m.size() != 0) be_.add_inplace(part, received_, m.size());
}

void GradientSync::gather_range(float* dest, const FlatRange& r) {
  const FlatRange m = mine(r);
  const HostStaged own(be_, params().at(m.begin, m.size()), m.size());
  HostStaged all(be_, dest, r.size(), HostStaged::Mode::Write);
  // A send block inside the receive buffer (gathering in place) is copied out first.
  const std::less<const float*> before;
  const bool inside =
      m.size() != 0 && !before(own.data(), all.data()) && before(own.data(), all.data() + r.size());
  std::vector<float> copy;
  if (inside) copy.assign(own.data(), own.data() + m.size());
  dp_.all_gather_v(inside ? copy.data() : own.data(), all.data(), split_counts(r), DType::F32);
  all.flush();
}

void GradientSync::begin_step() {
  grads().fill_zero();
  if (grad_shard_) be_.fill_zero(grad_shard_, end_ - begin_);
}

void GradientSync::reduce() {
  const int D = dp_.size();
  const float inv = 1.0f / static_cast<float>(D);
  FlatBuffer& g = grads();
  if (shards_gradients()) {
    // The units were reduced during backward; the rest now (after the tied-tensor exchange).
    for (const FlatRange& r : outside_)
      reduce_range_into_shard(g.at(r.begin, r.size()), r, /*accumulate=*/false);
    be_.scale_inplace(grad_shard_, inv, end_ - begin_);
    return;
  }
  float* all = g.at(0, flat_size_);
  // ZeRO-1 always fills this rank's gradient shard (with dp = 1 the reduce-scatter is a copy).
  if (sharded()) {
    const size_t part = end_ - begin_;
    dp_.reduce_scatter(all, grad_shard_, part, DType::F32, ReduceOp::Sum);
    be_.scale_inplace(grad_shard_, inv, part);
    return;
  }
  if (D == 1) return;
  // Bucketed all-reduce: bounded message sizes, averaged.
  constexpr size_t kBucket = size_t{1} << 24;
  for (size_t off = 0; off < flat_size_; off += kBucket) {
    const size_t n = std::min(kBucket, flat_size_ - off);
    dp_.all_reduce(all + off, n, DType::F32, ReduceOp::Sum);
  }
  be_.scale_inplace(all, inv, flat_size_);
}

const float* GradientSync::shard_grads() const {
  return sharded() ? grad_shard_ : grads().at(begin_, end_ - begin_);
}

void GradientSync::gather_params() {
  if (!sharded()) return;
  if (shards_params()) {  // units are gathered when used
    for (const FlatRange& r : outside_) gather_range(params().at(r.begin, r.size()), r);
    return;
  }
  gather_range(params().at(0, flat_size_), {0, flat_size_});
}

void GradientSync::before_use(int u) {
  if (!shards_gradients()) return;
  grads().open(u);
  if (!shards_params()) return;
  params().open(u);
  gather_range(params().window(), unit(u));
}

void GradientSync::after_forward(int u) {
  if (!shards_gradients()) return;
  unit(u);
  grads().close();
  if (shards_params()) params().close();
}

void GradientSync::after_backward(int u) {
  if (!shards_gradients()) return;
  const FlatRange& r = unit(u);
  FlatBuffer& g = grads();
  reduce_range_into_shard(g.window(), r, /*accumulate=*/true);
  be_.fill_zero(g.window(), r.size());
  g.close();
  if (shards_params()) params().close();
}

}  // namespace shardlm
