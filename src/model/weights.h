// One rank's parameters: the view table and the flat buffers it describes (backend memory),
// with gradients when the rank trains. Training stages and generation decoders both hold one,
// so initialisation and checkpoint loading are written once. With ZeRO-2/3 the buffers keep
// only what the rank holds (parallel/flat_buffer.h): a layer's elements may then be reachable
// only through its unit span while its ZeRO hooks have it in the window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/param_layout.h"
#include "parallel/flat_buffer.h"

namespace shardlm {

class KernelBackend;
class ModelFamily;

class ModelWeights {
 public:
  // capacity: elements of each flat buffer, at least layout.total() (ZeRO pads to a multiple
  // of dp); the tail stays zero. storage: what each buffer keeps (default: everything).
  ModelWeights(const ModelFamily& family, const ModelConfig& cfg, const ShardSpec& shard,
               KernelBackend& backend, size_t capacity, bool with_grads,
               const StageStorage& storage = {});
  ~ModelWeights();
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;

  const ParamLayout& layout() const { return layout_; }
  KernelBackend& backend() const { return be_; }
  size_t capacity() const { return capacity_; }
  FlatBuffer& param_buffer() { return *params_; }
  const FlatBuffer& param_buffer() const { return *params_; }
  FlatBuffer& grad_buffer();  // throws without gradients
  // The whole flat buffers [capacity]; throws where ZeRO keeps only part of them.
  float* params() { return params_->at(0, capacity_); }
  const float* params() const { return params_->at(0, capacity_); }
  float* grads() { return grads_ ? grads_->at(0, capacity_) : nullptr; }  // null: no gradients
  const float* grads() const { return grads_ ? grads_->at(0, capacity_) : nullptr; }
  // One tensor (throws for a tensor of a layer ZeRO holds in the window: use the unit spans).
  float* param(const std::string& name);
  const float* param(const std::string& name) const;
  float* grad(const std::string& name);
  // Where local layer i's parameters / gradients are (parallel/param_units.h's FlatSpan).
  FlatSpan layer_params(int local_layer) { return params_->unit(local_layer); }
  FlatSpan layer_grads(int local_layer) { return grad_buffer().unit(local_layer); }

  // The family's initialisation of every tensor this rank holds.
  void init(uint64_t seed);
  void zero_grads();

 private:
  const ModelFamily& family_;
  ModelConfig cfg_;
  ParamLayout layout_;
  KernelBackend& be_;
  size_t capacity_ = 0;
  std::unique_ptr<FlatBuffer> params_, grads_;
};

}  // namespace shardlm
