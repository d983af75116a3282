#include "model/param_layout.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "model/family.h"

namespace shardlm {

std::string layer_param_name(int layer, const char* suffix) {
  return "h." + std::to_string(layer) + "." + suffix;
}

void ParamLayout::add(const TensorSpec& spec, bool primary, bool tied) {
  TensorView v;
  v.name = spec.name;
  v.global_shape = spec.shape;
  v.local_shape = spec.shape;
  v.offset.assign(spec.shape.size(), 0);
  v.tp_replicated = spec.split_dim == TensorSpec::kReplicated;
  if (!v.tp_replicated) {
    const auto dim = static_cast<size_t>(spec.split_dim);
    SHARDLM_CHECK(dim < spec.shape.size(), spec.name + ": split dimension out of range");
    const int64_t extent = spec.shape[dim];
    if (extent % shard_.tp_size != 0)
      fail("tensor " + spec.name + ": dimension " + std::to_string(dim) + " (" +
           std::to_string(extent) + ") is not divisible by tp " + std::to_string(shard_.tp_size));
    const int64_t part = extent / shard_.tp_size;
    v.local_shape[dim] = part;
    v.offset[dim] = part * shard_.tp_rank;
  }
  v.numel = 1;
  for (auto d : v.local_shape) v.numel *= static_cast<size_t>(d);
  v.weight_decay = spec.weight_decay;
  v.primary = primary && !(v.tp_replicated && shard_.tp_rank != 0);
  v.tied_across_stages = tied;
  v.flat_offset = total_;
  total_ += (v.numel + kAlign - 1) / kAlign * kAlign;
  views_.push_back(std::move(v));
}

ParamLayout::ParamLayout(const TensorPlan& plan, const ShardSpec& shard) : shard_(shard) {
  // A tied tensor is held twice only when the first and the last stage are different ranks.
  const bool split_stages = !(shard.first_stage && shard.last_stage);
  if (shard.first_stage)
    for (const auto& s : plan)
      if (s.placement == StagePlacement::kFirstStage)
        add(s, true, s.tied_to_last_stage && split_stages);
  for (const auto& s : plan)
    if (s.placement == StagePlacement::kLayer && s.layer >= shard.layer_begin &&
        s.layer < shard.layer_end)
      add(s, true, false);
  if (!shard.last_stage) return;
  for (const auto& s : plan)
    if (s.placement == StagePlacement::kLastStage) add(s, true, false);
  if (!split_stages) return;
  for (const auto& s : plan)
    if (s.placement == StagePlacement::kFirstStage && s.tied_to_last_stage)
      add(s, /*primary=*/false, /*tied=*/true);
}

namespace {
TensorPlan validated_plan(const ModelConfig& cfg) {
  cfg.validate();
  return model_family(cfg.family).tensor_plan(cfg);
}
}  // namespace

ParamLayout::ParamLayout(const ModelConfig& cfg, const ShardSpec& shard)
    : ParamLayout(validated_plan(cfg), shard) {}

const TensorView* ParamLayout::find(const std::string& name) const {
  for (const auto& v : views_)
    if (v.name == name) return &v;
  return nullptr;
}

const TensorView& ParamLayout::get(const std::string& name) const {
  const TensorView* v = find(name);
  if (!v) fail("parameter '" + name + "' is not held by this rank");
  return *v;
}

std::vector<FlatRange> layer_units(const ParamLayout& layout) {
  std::vector<FlatRange> units;
  const ShardSpec& shard = layout.shard();
  for (int l = shard.layer_begin; l < shard.layer_end; ++l) {
    const std::string prefix = layer_param_name(l, "");
    FlatRange u{SIZE_MAX, 0};
    for (const TensorView& v : layout.views()) {
      if (v.name.compare(0, prefix.size(), prefix) != 0) continue;
      u.begin = std::min(u.begin, v.flat_offset);
      u.end = std::max(u.end, v.flat_offset + v.numel);
    }
    SHARDLM_CHECK(u.begin < u.end, "layer " + std::to_string(l) + " holds no parameters");
    units.push_back(u);
  }
  return units;
}

}  // namespace shardlm
