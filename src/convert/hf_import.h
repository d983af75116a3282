// `shardlm convert --from hf`: a Hugging Face GPT-2 or Llama directory (config.json and
// model.safetensors, or shards listed in model.safetensors.index.json) becomes a shardlm
// checkpoint (step 0, parameters only, stored f32) under CKPT_DIR, loadable into any layout
// (`shardlm train --init-from`, `shardlm generate`). A SentencePiece tokenizer.model next to
// it is imported as is. The parameters are assembled in memory (f32, the model's size) because
// save_checkpoint writes a rank's tensors together; the files are read tensor by tensor.
#pragma once

#include <filesystem>

namespace shardlm {

struct HfImportReport {
  std::filesystem::path checkpoint;  // the committed step_00000000 directory
  int tensors = 0;
  bool tokenizer = false;
};

HfImportReport import_hf(const std::filesystem::path& hf_dir, const std::filesystem::path& root);

}  // namespace shardlm
