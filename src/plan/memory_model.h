// Predicted bytes per rank, by role (kernels/memory_account.h's roles), for a model, a layout
// and a sequence length: what that rank's backend allocator will count. Exact for the layouts
// the trainer runs (ZeRO 0/1, no recompute; checked against the allocator by
// test_memory_model and docs/planner.md's table); a model of the design for the others.
#pragma once

#include <vector>

#include "kernels/memory_account.h"
#include "model/config.h"
#include "plan/layout.h"

namespace shardlm {

struct RankMemory {
  int pp_rank = 0;
  MemoryTotals persistent;  // allocated at start and held for the run
  MemoryTotals transient;   // the largest buffer allocated and freed within a step
  MemoryTotals peak;        // persistent + transient, per role and in total
};

// One rank of pipeline stage `pp_rank` (every TP and DP rank of a stage holds the same sizes).
RankMemory predict_rank_memory(const ModelConfig& cfg, const Layout& layout, int seq_len,
                               int pp_rank);
// Every stage's ranks, and the one with the highest peak.
std::vector<RankMemory> predict_stage_memory(const ModelConfig& cfg, const Layout& layout,
                                             int seq_len);
RankMemory predict_worst_rank(const ModelConfig& cfg, const Layout& layout, int seq_len);

}  // namespace shardlm
