// shardlm's tokenizer as a Hugging Face tokenizer. A SentencePiece model becomes tokenizer.json
// (the `tokenizers` library's BPE with byte fallback: the same vocabulary, merges ordered by
// the SentencePiece scores, spaces as U+2581, no added prefix, no BOS/EOS added), its
// tokenizer_config.json and special_tokens_map.json, and the original tokenizer.model. A
// byte-level BPE tokenizer is its own tokenizer.json, written as it came, with those two.
#pragma once

#include <filesystem>

#include "data/tokenizer.h"
#include "model/interchange.h"

namespace shardlm {

SpecialIds special_ids(const Tokenizer& tokenizer);

// Writes the files into `dir`; model_max_length is the model's context.
void write_hf_tokenizer(const Tokenizer& tokenizer, int model_max_length,
                        const std::filesystem::path& dir);

}  // namespace shardlm
