// SentencePiece models (.model files, a serialized protobuf) behind data/tokenizer.h: encoding
// and decoding through libsentencepiece, and training shardlm's BPE models (train_tokenizer,
// declared in data/tokenizer.h).
#pragma once

#include <memory>
#include <string>

#include "data/tokenizer_model.h"

namespace shardlm {

// Throws naming `origin` when SentencePiece cannot load the bytes.
std::unique_ptr<TokenizerModel> make_sentencepiece_model(const std::string& serialized,
                                                         const std::string& origin);

}  // namespace shardlm
