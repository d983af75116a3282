// GPT-2 generation: the shared KV-cached decoder (model/kv_cache_decoder.h) with GPT-2's hooks —
// token + position embedding at the new positions, the training block (block.h) with attention
// against the cache, the final LayerNorm and the tied head.
#pragma once

#include <memory>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/decoder.h"

namespace shardlm {

std::unique_ptr<CachedDecoder> make_gpt2_decoder(const ModelConfig& cfg, KernelBackend& backend);

}  // namespace shardlm
