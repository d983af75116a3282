// Predicted bytes per rank, by role (kernels/memory_account.h's roles), for a model, a layout
// and a sequence length: what that rank's backend allocator will count, to the byte (checked
// against the allocator by test_memory_model and docs/planner.md's table, for every ZeRO
// stage and recompute mode). The model state is sized by the same rules the trainer
// allocates by (GradientSync's storage, FlatBuffer), the activations by the family's
// footprint.
#pragma once

#include <vector>

#include "kernels/memory_account.h"
#include "model/config.h"
#include "plan/layout.h"

namespace shardlm {

struct RankMemory {
  int pp_rank = 0, dp_rank = 0;
  MemoryTotals persistent;  // allocated at start and held for the run
  MemoryTotals transient;   // the largest buffer allocated and freed within a step
  MemoryTotals peak;        // persistent + transient, per role and in total
};

// The rank of pipeline stage `pp_rank` and DP rank `dp_rank` (every TP rank of it holds the
// same sizes; DP ranks differ with ZeRO-2/3, whose partitions cover different tensors).
RankMemory predict_rank_memory(const ModelConfig& cfg, const Layout& layout, int seq_len,
                               int pp_rank, int dp_rank);
// Each stage's DP rank with the highest peak, and the highest of them.
std::vector<RankMemory> predict_stage_memory(const ModelConfig& cfg, const Layout& layout,
                                             int seq_len);
RankMemory predict_worst_rank(const ModelConfig& cfg, const Layout& layout, int seq_len);

}  // namespace shardlm
