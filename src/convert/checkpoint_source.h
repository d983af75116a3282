// What every export reads first from a checkpoint: its model config and the tokenizer it
// carries (checked against the config).
#pragma once

#include <optional>

#include "checkpoint/checkpoint.h"
#include "data/tokenizer.h"
#include "model/config.h"

namespace shardlm {

// Throws naming the checkpoint when its config is not a valid [model] section.
ModelConfig checkpoint_model_config(const CheckpointReader& reader);
// nullopt when the run had none; throws naming the checkpoint when its vocabulary size is not
// the config's vocab_size.
std::optional<Tokenizer> checkpoint_tokenizer(const CheckpointReader& reader,
                                              const ModelConfig& cfg);

}  // namespace shardlm
