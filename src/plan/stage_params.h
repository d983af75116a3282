// The parameter sizes of one pipeline stage's rank that the memory and traffic models need,
// from the family's tensor plan (model/param_layout.h). Memoised per thread: the planner asks
// for the same few stages of thousands of layouts.
#pragma once

#include <cstddef>
#include <vector>

#include "model/config.h"
#include "model/param_layout.h"
#include "plan/layout.h"

namespace shardlm {

struct StageParams {
  size_t flat = 0;               // the flat buffer's elements, padded to dp partitions
  std::vector<FlatRange> units;  // its layers' flat ranges (ZeRO-2/3's units, layer_units)
  size_t largest_tied = 0;       // elements of the largest tensor tied across stages
  size_t tied_total = 0;         // elements of every tensor tied across stages
  bool first = false, last = false;
  int layer_begin = 0, layer_end = 0;
};

StageParams stage_params(const ModelConfig& cfg, const Layout& layout, int pp_rank);

// The ShardSpec of pipeline rank `pp_rank` under `layout` (its layers, first/last stage, TP).
ShardSpec stage_shard(const ModelConfig& cfg, const Layout& layout, int pp_rank);

}  // namespace shardlm
