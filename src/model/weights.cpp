#include "model/weights.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "model/family.h"

namespace shardlm {

ModelWeights::ModelWeights(const ModelFamily& family, const ModelConfig& cfg,
                           const ShardSpec& shard, KernelBackend& backend, size_t capacity,
                           bool with_grads, const StageStorage& storage)
    : family_(family), cfg_(cfg), layout_(family.tensor_plan(cfg), shard), be_(backend) {
  capacity_ = std::max(capacity, layout_.total());
  params_ = std::make_unique<FlatBuffer>(be_, capacity_, MemoryRole::Parameters, storage.params);
  if (with_grads)
    grads_ = std::make_unique<FlatBuffer>(be_, capacity_, MemoryRole::Gradients, storage.grads);
}

ModelWeights::~ModelWeights() = default;

FlatBuffer& ModelWeights::grad_buffer() {
  SHARDLM_CHECK(grads_ != nullptr, "these weights hold no gradients");
  return *grads_;
}

float* ModelWeights::param(const std::string& name) {
  const TensorView& v = layout_.get(name);
  return params_->at(v.flat_offset, v.numel);
}

const float* ModelWeights::param(const std::string& name) const {
  const TensorView& v = layout_.get(name);
  return static_cast<const FlatBuffer&>(*params_).at(v.flat_offset, v.numel);
}

float* ModelWeights::grad(const std::string& name) {
  const TensorView& v = layout_.get(name);
  return grad_buffer().at(v.flat_offset, v.numel);
}

void ModelWeights::init(uint64_t seed) {
  std::vector<float> host;
  for (const auto& v : layout_.views()) {
    host.assign(v.numel, 0.0f);
    family_.init_tensor(host.data(), v, cfg_, seed);
    params_->store(v.flat_offset, host.data(), v.numel);
  }
}

void ModelWeights::zero_grads() {
  if (grads_) grads_->fill_zero();
}

}  // namespace shardlm
