// The part of a ModelFamily that every family built on the shared training stage and decoder
// (model/transformer_stage.h, model/kv_cache_decoder.h) implements alike: make_stage,
// activation_footprint and make_decoder forward to the factory functions of the family's folder
// (model/<family>/stage.h and decoder.h). The family implements the rest of ModelFamily.
#pragma once

#include <memory>

#include "model/decoder.h"
#include "model/family.h"
#include "model/model.h"

namespace shardlm {

struct TransformerFactories {
  std::unique_ptr<ModelStage> (*make_stage)(const StageRequest& request);
  ActivationFootprint (*activation_footprint)(const ModelConfig& cfg, const ShardSpec& shard, int B,
                                              int T);
  std::unique_ptr<CachedDecoder> (*make_decoder)(const ModelConfig& cfg, KernelBackend& backend);
};

class TransformerFamily : public ModelFamily {
 public:
  explicit TransformerFamily(TransformerFactories factories) : factories_(factories) {}

  ActivationFootprint activation_footprint(const ModelConfig& cfg, const ShardSpec& shard, int B,
                                           int T) const override {
    return factories_.activation_footprint(cfg, shard, B, T);
  }
  std::unique_ptr<ModelStage> make_stage(const StageRequest& request) const override {
    return factories_.make_stage(request);
  }
  std::unique_ptr<CachedDecoder> make_decoder(const ModelConfig& cfg,
                                              KernelBackend& backend) const override {
    return factories_.make_decoder(cfg, backend);
  }

 private:
  TransformerFactories factories_;
};

}  // namespace shardlm
