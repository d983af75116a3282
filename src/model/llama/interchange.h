// Llama as transformers' LlamaForCausalLM and llama.cpp's llama architecture
// (model/interchange.h).
#pragma once

#include "model/interchange.h"

namespace shardlm {

const FamilyInterchange& llama_interchange();

}  // namespace shardlm
