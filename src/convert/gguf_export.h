// `shardlm convert --to gguf`: a checkpoint (any saved layout) as one GGUF v3 file for
// llama.cpp's architecture of its family (model/interchange.h), with the SentencePiece
// vocabulary (tokens, scores, token types, special ids) so llama.cpp tokenizes like shardlm.
// Vectors (norms, biases) stay f32 as llama.cpp's own converter keeps them; with q8_0, a
// matrix whose rows are not a multiple of 32 is written f16.
#pragma once

#include <filesystem>

#include "convert/gguf.h"

namespace shardlm {

struct GgufExportReport {
  int tensors = 0;
  uint64_t bytes = 0;
};

GgufExportReport export_gguf(const std::filesystem::path& checkpoint,
                             const std::filesystem::path& out_file, GgufType type);

}  // namespace shardlm
