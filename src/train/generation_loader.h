// Loading a trained model for `shardlm generate`: find the checkpoint, read its config's
// [model] section, build a Generator, fill its weights (any saved layout) and restore the
// tokenizer the checkpoint carries.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "data/tokenizer.h"
#include "kernels/backend.h"
#include "model/generator.h"

namespace shardlm {

struct GenerationModel {
  std::filesystem::path checkpoint;  // the directory it was loaded from
  std::unique_ptr<Generator> generator;
  std::optional<Tokenizer> tokenizer;  // absent when the run had none (synthetic data)
};

// `path` is anything resolve_checkpoint (checkpoint/checkpoint.h) takes: a checkpoint, a run
// directory or a checkpoint root. Throws naming the checkpoint when its config has no valid [model]
// section, a tensor does not fit, or its tokenizer's vocabulary differs from the model's
// vocab_size.
GenerationModel load_generation_model(const std::filesystem::path& path, KernelBackend& backend);

}  // namespace shardlm
