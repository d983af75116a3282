#include "train/generation_loader.h"

#include <string>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "model/config.h"
#include "train/checkpointing.h"

namespace shardlm {

namespace fs = std::filesystem;

GenerationModel load_generation_model(const fs::path& path, KernelBackend& backend) {
  GenerationModel loaded;
  loaded.checkpoint = resolve_checkpoint(path);
  CheckpointReader reader(loaded.checkpoint);
  ModelConfig cfg;
  try {
    cfg = model_config_from_ini(reader.config_text());
  } catch (const Error& e) {
    // e already names the rank and host; add which checkpoint's config it is.
    throw Error("checkpoint " + loaded.checkpoint.string() + ": config: " + e.what());
  }
  if (!reader.tokenizer_model().empty()) {
    const auto& bytes = reader.tokenizer_model();
    loaded.tokenizer =
        Tokenizer::from_serialized(std::string(bytes.begin(), bytes.end()),
                                   "the tokenizer of checkpoint " + loaded.checkpoint.string());
    if (loaded.tokenizer->vocab_size() != cfg.vocab_size)
      fail("checkpoint " + loaded.checkpoint.string() + ": its tokenizer has " +
           std::to_string(loaded.tokenizer->vocab_size()) +
           " pieces but the model's vocab_size is " + std::to_string(cfg.vocab_size));
  }
  loaded.generator = std::make_unique<Generator>(cfg, backend);
  load_model_params(loaded.generator->weights(), reader);
  return loaded;
}

}  // namespace shardlm
