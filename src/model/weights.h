// One rank's parameters: the view table and the flat buffers it describes (backend memory),
// with gradients when the rank trains. Training stages and generation decoders both hold one,
// so initialisation and checkpoint loading are written once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/param_layout.h"

namespace shardlm {

class KernelBackend;
class ModelFamily;

class ModelWeights {
 public:
  // capacity: elements of each flat buffer, at least layout.total() (ZeRO pads to a multiple
  // of dp); the tail stays zero.
  ModelWeights(const ModelFamily& family, const ModelConfig& cfg, const ShardSpec& shard,
               KernelBackend& backend, size_t capacity, bool with_grads);
  ~ModelWeights();
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;

  const ParamLayout& layout() const { return layout_; }
  KernelBackend& backend() const { return be_; }
  size_t capacity() const { return capacity_; }
  float* params() { return params_; }
  const float* params() const { return params_; }
  float* grads() { return grads_; }  // null without gradients
  const float* grads() const { return grads_; }
  float* param(const std::string& name) { return params_ + layout_.get(name).flat_offset; }
  const float* param(const std::string& name) const {
    return params_ + layout_.get(name).flat_offset;
  }
  float* grad(const std::string& name) { return grads_ + layout_.get(name).flat_offset; }

  // The family's initialisation of every tensor this rank holds.
  void init(uint64_t seed);
  void zero_grads();

 private:
  const ModelFamily& family_;
  ModelConfig cfg_;
  ParamLayout layout_;
  KernelBackend& be_;
  size_t capacity_ = 0;
  float* params_ = nullptr;
  float* grads_ = nullptr;
};

}  // namespace shardlm
