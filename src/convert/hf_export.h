// `shardlm convert --to hf`: a checkpoint (any saved layout) as a Hugging Face model directory:
// config.json, generation_config.json, model.safetensors (or model-0000i-of-0000n.safetensors
// + model.safetensors.index.json above max_shard_bytes) and the tokenizer (convert/hf_tokenizer.h).
// Streams tensor by tensor (convert/external_tensor.h).
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/dtype.h"

namespace shardlm {

struct HfExportOptions {
  DType dtype = DType::F32;                     // F32, BF16 or F16
  uint64_t max_shard_bytes = 5'000'000'000ull;  // transformers' default shard size (5 GB)
};

struct HfExportReport {
  int files = 0;  // safetensors files
  int tensors = 0;
  uint64_t bytes = 0;  // of the safetensors files
  bool tokenizer = false;
};

// `checkpoint` is a committed checkpoint directory; `out_dir` must not exist or be empty.
HfExportReport export_hf(const std::filesystem::path& checkpoint,
                         const std::filesystem::path& out_dir, const HfExportOptions& options);

// Refuses (naming the flag) an out_dir that holds files: an export never mixes with old ones.
void require_empty_dir(const std::filesystem::path& dir, const char* what);

}  // namespace shardlm
