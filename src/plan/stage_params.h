// The parameter sizes of one pipeline stage's rank that the memory and traffic models need,
// from the family's tensor plan (model/param_layout.h). Memoised per thread: the planner asks
// for the same few stages of thousands of layouts.
#pragma once

#include <cstddef>

#include "model/config.h"
#include "model/param_layout.h"
#include "plan/layout.h"

namespace shardlm {

struct StageParams {
  size_t flat = 0;           // the flat buffer's elements, padded to dp partitions
  size_t largest_layer = 0;  // elements of the stage's largest block (ZeRO-3's gather unit)
  size_t largest_tied = 0;   // elements of the largest tensor tied across stages
  size_t tied_total = 0;     // elements of every tensor tied across stages
  bool first = false, last = false;
  int layer_begin = 0, layer_end = 0;
};

StageParams stage_params(const ModelConfig& cfg, const Layout& layout, int pp_rank);

// The ShardSpec of pipeline rank `pp_rank` under `layout` (its layers, first/last stage, TP).
ShardSpec stage_shard(const ModelConfig& cfg, const Layout& layout, int pp_rank);

}  // namespace shardlm
