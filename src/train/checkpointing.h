// The bridge between a training run and the sharded checkpoint format (checkpoint/checkpoint.h):
// which rectangles each rank writes, and how any rank fills its buffers from a checkpoint
// saved with any other layout.
//
// Ownership rules (each global element is written exactly once):
//  - which DP rank writes parameters and AdamW moments is GradientSync's rule
//    (parallel/data_parallel.h); of a rank's views only the primary copies are written
//    (TP-replicated tensors from TP rank 0; a tied tensor from the first stage);
//  - with ZeRO every DP rank writes the moments of its flat partition (ZeRO-3: its parameters
//    too), cut along view boundaries into rectangles (range_to_rects), so the checkpoint
//    stays layout-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/rect.h"
#include "model/weights.h"
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

// The flat range of parameters this rank writes: its partition with ZeRO-3 (it holds no
// others in place), else the whole buffer (written by DP rank 0 only).
FlatRange written_param_range(Trainer& trainer);
// The rectangles this rank writes (the ownership rules above), pointing into `params` (the
// elements of written_param_range, from its first) and the AdamW moments `m`, `v` (the
// optimizer's flat range): host memory for save_checkpoint, backend memory for a snapshot
// (train/slice_snapshot.h).
std::vector<CheckpointSlice> training_checkpoint_slices(Trainer& trainer, const float* params,
                                                        const float* m, const float* v);
// The run-wide metadata of a training checkpoint (step, data position, layout, seed).
CheckpointInfo training_checkpoint_info(Trainer& trainer, const TrainingCheckpointInfo& info);

// Collective over the world. Returns the committed directory.
std::filesystem::path save_training_checkpoint(Trainer& trainer, const std::filesystem::path& root,
                                               const TrainingCheckpointInfo& info);

// Fills the trainer's parameters and AdamW moments from `reader` (any layout). Throws naming
// the tensor when the checkpoint's shapes do not fit this model.
void load_training_checkpoint(Trainer& trainer, CheckpointReader& reader);

// Fills only the parameters of `weights` (training stage or generation decoder; any layout).
void load_model_params(ModelWeights& weights, CheckpointReader& reader);

}  // namespace shardlm
