// Llama training: the shared stage (model/transformer_stage.h) with Llama's hooks — the token
// embedding, the block of block.h with RoPE and causal grouped-query attention over the
// micro-batch, the final RMSNorm, and the head: lm_head, or embed_tokens when tied (then the
// last stage holds a tied copy and the trainer sums the two copies' gradients).
#pragma once

#include <memory>

#include "model/family.h"
#include "model/model.h"

namespace shardlm {

std::unique_ptr<ModelStage> make_llama_stage(const StageRequest& request);

// What a Llama stage over `shard` with B x T micro-batches allocates for activations.
ActivationFootprint llama_activation_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                               int B, int T);

}  // namespace shardlm
