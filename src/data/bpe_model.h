// Byte-level BPE (GPT-2's tokenizer) from a Hugging Face tokenizer.json (data/tokenizer_json.h):
// the ids are those of the `tokenizers` library's encode(text, add_special_tokens=False).
//
// Encoding: added tokens are cut out first (leftmost-longest; those with normalized=false,
// then those with normalized=true in the rest, as the library orders its two passes), the rest
// is split by GPT-2's pre-tokenizer (data/gpt2_pretokenizer.h), each piece's bytes become
// byte-level characters (data/byte_level.h) and BPE merges them: always the pair of lowest
// merge rank, the leftmost of equal ones (the library's merge loop). Pieces seen before come
// from a cache (per instance, guarded by a mutex).
#pragma once

#include <memory>
#include <string>

#include "data/tokenizer_model.h"

namespace shardlm {

// Throws naming `origin` and the field when the file is not a tokenizer.json shardlm reads.
std::unique_ptr<TokenizerModel> make_byte_level_bpe_model(const std::string& json,
                                                          const std::string& origin);

}  // namespace shardlm
