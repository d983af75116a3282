#include "model/weights.h"

#include <algorithm>
#include <vector>

#include "kernels/backend.h"
#include "model/family.h"

namespace shardlm {

ModelWeights::ModelWeights(const ModelFamily& family, const ModelConfig& cfg,
                           const ShardSpec& shard, KernelBackend& backend, size_t capacity,
                           bool with_grads)
    : family_(family), cfg_(cfg), layout_(family.tensor_plan(cfg), shard), be_(backend) {
  capacity_ = std::max(capacity, layout_.total());
  params_ = be_.alloc_floats(capacity_, MemoryRole::Parameters);
  if (with_grads) grads_ = be_.alloc_floats(capacity_, MemoryRole::Gradients);
}

ModelWeights::~ModelWeights() {
  be_.free_memory(params_);
  if (grads_) be_.free_memory(grads_);
}

void ModelWeights::init(uint64_t seed) {
  std::vector<float> host;
  for (const auto& v : layout_.views()) {
    host.assign(v.numel, 0.0f);
    family_.init_tensor(host.data(), v, cfg_, seed);
    be_.copy_from_host(params_ + v.flat_offset, host.data(), v.numel * sizeof(float));
  }
}

void ModelWeights::zero_grads() {
  if (grads_) be_.fill_zero(grads_, capacity_);
}

}  // namespace shardlm
