#include "plan/stage_params.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "model/param_layout.h"
#include "parallel/data_parallel.h"
#include "parallel/pipeline.h"

namespace shardlm {

namespace {

StageParams compute(const ModelConfig& cfg, const ShardSpec& shard, int dp) {
  const ParamLayout pl(cfg, shard);
  StageParams s;
  s.flat = GradientSync::padded_flat_size(pl.total(), dp, ParamLayout::kAlign);
  s.units = layer_units(pl);
  for (const TensorView& v : pl.views()) {
    if (!v.tied_across_stages) continue;
    s.largest_tied = std::max(s.largest_tied, v.numel);
    s.tied_total += v.numel;
  }
  return s;
}

}  // namespace

ShardSpec stage_shard(const ModelConfig& cfg, const Layout& layout, int pp_rank) {
  const auto ranges = pipeline_stage_ranges(cfg.n_layer, layout.pp, layout.pp_layers);
  ShardSpec shard;
  shard.tp_size = layout.tp;
  shard.layer_begin = ranges[static_cast<size_t>(pp_rank)].first;
  shard.layer_end = ranges[static_cast<size_t>(pp_rank)].second;
  shard.first_stage = pp_rank == 0;
  shard.last_stage = pp_rank == layout.pp - 1;
  return shard;
}

StageParams stage_params(const ModelConfig& cfg, const Layout& layout, int pp_rank) {
  const ShardSpec shard = stage_shard(cfg, layout, pp_rank);
  using Key = std::tuple<std::string, int, int, int, bool, bool, bool, int>;
  thread_local std::map<Key, StageParams> memo;
  const Key key{model_config_to_ini(cfg), shard.tp_size,    shard.layer_begin, shard.layer_end,
                shard.first_stage,        shard.last_stage, layout.pp > 1,     layout.dp};
  auto it = memo.find(key);
  if (it == memo.end()) it = memo.emplace(key, compute(cfg, shard, layout.dp)).first;
  StageParams s = it->second;
  s.first = shard.first_stage;
  s.last = shard.last_stage;
  s.layer_begin = shard.layer_begin;
  s.layer_end = shard.layer_end;
  return s;
}

}  // namespace shardlm
