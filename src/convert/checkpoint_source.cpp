#include "convert/checkpoint_source.h"

#include "core/error.h"

namespace shardlm {

ModelConfig checkpoint_model_config(const CheckpointReader& reader) {
  try {
    return model_config_from_ini(reader.config_text());
  } catch (const Error& e) {
    throw Error("checkpoint " + reader.dir().string() + ": config: " + e.what());
  }
}

std::optional<Tokenizer> checkpoint_tokenizer(const CheckpointReader& reader,
                                              const ModelConfig& cfg) {
  const auto& bytes = reader.tokenizer_model();
  if (bytes.empty()) return std::nullopt;
  Tokenizer tok =
      Tokenizer::from_serialized(std::string(bytes.begin(), bytes.end()),
                                 "the tokenizer of checkpoint " + reader.dir().string());
  if (tok.vocab_size() != cfg.vocab_size)
    fail("checkpoint " + reader.dir().string() + ": its tokenizer has " +
         std::to_string(tok.vocab_size()) + " pieces but the config's vocab_size is " +
         std::to_string(cfg.vocab_size));
  return tok;
}

}  // namespace shardlm
