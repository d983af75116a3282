// GPT-2 training: the shared stage (model/transformer_stage.h) with GPT-2's hooks — token +
// position embedding, the block of block.h with causal attention over the micro-batch, the
// final LayerNorm, and the tied head (wte; the last stage holds a tied copy).
#pragma once

#include <memory>

#include "model/family.h"
#include "model/model.h"

namespace shardlm {

std::unique_ptr<ModelStage> make_gpt2_stage(const StageRequest& request);

// What a GPT-2 stage over `shard` with B x T micro-batches allocates for activations.
ActivationFootprint gpt2_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard, int B,
                                              int T);

}  // namespace shardlm
