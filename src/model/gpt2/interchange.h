// GPT-2 as transformers' GPT2LMHeadModel and llama.cpp's gpt2 architecture (model/interchange.h).
#pragma once

#include "model/interchange.h"

namespace shardlm {

const FamilyInterchange& gpt2_interchange();

}  // namespace shardlm
