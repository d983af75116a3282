// The bridge between a training run and the sharded checkpoint format (checkpoint/checkpoint.h):
// which rectangles each rank writes, and how any rank fills its buffers from a checkpoint
// saved with any other layout.
//
// Ownership rules (each global element is written exactly once):
//  - parameters and, without ZeRO, AdamW moments: DP rank 0 writes the primary copy of every
//    view (TP-replicated tensors from TP rank 0; the tied wte from the first stage);
//  - with ZeRO-1 every DP rank writes the moments of its flat partition, cut along view
//    boundaries into rectangles (range_to_rects), so the checkpoint stays layout-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/rect.h"
#include "model/gpt2.h"
#include "train/trainer.h"

namespace shardlm {

// The elements [begin, end) of the row-major block `block` (a rectangle of a global tensor) as
// rectangles of that tensor, in order; their row-major contents concatenate to the range.
std::vector<Rect> range_to_rects(const Rect& block, int64_t begin, int64_t end);

struct TrainingCheckpointInfo {
  int64_t step = 0;               // optimizer steps completed
  uint64_t samples_consumed = 0;  // global samples read so far (data position)
  std::string config_text;        // effective run config (INI)
  std::vector<uint8_t> tokenizer_model;
};

// Collective over the world. Returns the committed directory.
std::filesystem::path save_training_checkpoint(Trainer& trainer, const std::filesystem::path& root,
                                               const TrainingCheckpointInfo& info);

// Fills the trainer's parameters and AdamW moments from `reader` (any layout). Throws naming
// the tensor when the checkpoint's shapes do not fit this model.
void load_training_checkpoint(Trainer& trainer, CheckpointReader& reader);

// Fills only the parameters of `model` (for generation and conversion).
void load_model_params(GPT2& model, CheckpointReader& reader);

}  // namespace shardlm
