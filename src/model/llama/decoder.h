// Llama generation: the shared KV-cached decoder (model/kv_cache_decoder.h) with Llama's hooks —
// the token embedding, the training block (block.h) with RoPE at the new positions and
// grouped-query attention against a cache of n_kv_head heads, the final RMSNorm and the head.
#pragma once

#include <memory>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/decoder.h"

namespace shardlm {

std::unique_ptr<CachedDecoder> make_llama_decoder(const ModelConfig& cfg, KernelBackend& backend);

}  // namespace shardlm
