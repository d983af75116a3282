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

// `path` as a checkpoint: a committed checkpoint directory (it has a manifest.h5) as is; a run
// directory resolves to the newest committed checkpoint under <path>/checkpoints, and a
// checkpoint root to the newest under it. Throws naming the path when there is none.
std::filesystem::path resolve_generation_checkpoint(const std::filesystem::path& path);

struct GenerationModel {
  std::filesystem::path checkpoint;  // the directory it was loaded from
  std::unique_ptr<Generator> generator;
  std::optional<Tokenizer> tokenizer;  // absent when the run had none (synthetic data)
};

// Throws naming the checkpoint when its config has no valid [model] section, a tensor does not
// fit, or its tokenizer's vocabulary differs from the model's vocab_size.
GenerationModel load_generation_model(const std::filesystem::path& path, KernelBackend& backend);

}  // namespace shardlm
