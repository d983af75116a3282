#include "model/param_layout.h"

#include "core/error.h"

namespace shardlm {

std::string layer_param_name(int layer, const char* suffix) {
  return "h." + std::to_string(layer) + "." + suffix;
}

void ParamLayout::add(const std::string& name, std::vector<int64_t> global_shape, int split_dim,
                      bool replicated, bool primary) {
  TensorView v;
  v.name = name;
  v.global_shape = global_shape;
  v.local_shape = global_shape;
  v.offset.assign(global_shape.size(), 0);
  v.tp_replicated = replicated;
  if (!replicated) {
    const int64_t extent = global_shape[static_cast<size_t>(split_dim)];
    SHARDLM_CHECK(extent % shard_.tp_size == 0, name + ": dimension " + std::to_string(extent) +
                                                    " not divisible by tp " +
                                                    std::to_string(shard_.tp_size));
    const int64_t part = extent / shard_.tp_size;
    v.local_shape[static_cast<size_t>(split_dim)] = part;
    v.offset[static_cast<size_t>(split_dim)] = part * shard_.tp_rank;
  }
  v.numel = 1;
  for (auto d : v.local_shape) v.numel *= static_cast<size_t>(d);
  // Decay matrices and embeddings, never biases (c_attn.bias is [3, H, hd] but still a bias).
  const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  v.weight_decay = global_shape.size() >= 2 && !is_bias;
  v.primary = primary && !(replicated && shard_.tp_rank != 0);
  v.flat_offset = total_;
  total_ += (v.numel + kAlign - 1) / kAlign * kAlign;
  views_.push_back(std::move(v));
}

ParamLayout::ParamLayout(const ModelConfig& cfg, const ShardSpec& shard) : shard_(shard) {
  cfg.validate();
  const int64_t C = cfg.n_embd, H = cfg.n_head, hd = cfg.head_dim(), Vp = cfg.padded_vocab();
  if (shard.first_stage) {
    add("wte", {Vp, C}, 0, false);
    add("wpe", {cfg.max_seq_len, C}, 0, true);
  }
  for (int l = shard.layer_begin; l < shard.layer_end; ++l) {
    add(layer_param_name(l, "ln_1.weight"), {C}, 0, true);
    add(layer_param_name(l, "ln_1.bias"), {C}, 0, true);
    add(layer_param_name(l, "attn.c_attn.weight"), {3, H, hd, C}, 1, false);
    add(layer_param_name(l, "attn.c_attn.bias"), {3, H, hd}, 1, false);
    add(layer_param_name(l, "attn.c_proj.weight"), {C, C}, 1, false);
    add(layer_param_name(l, "attn.c_proj.bias"), {C}, 0, true);
    add(layer_param_name(l, "ln_2.weight"), {C}, 0, true);
    add(layer_param_name(l, "ln_2.bias"), {C}, 0, true);
    add(layer_param_name(l, "mlp.c_fc.weight"), {4 * C, C}, 0, false);
    add(layer_param_name(l, "mlp.c_fc.bias"), {4 * C}, 0, false);
    add(layer_param_name(l, "mlp.c_proj.weight"), {C, 4 * C}, 1, false);
    add(layer_param_name(l, "mlp.c_proj.bias"), {C}, 0, true);
  }
  if (shard.last_stage) {
    add("ln_f.weight", {C}, 0, true);
    add("ln_f.bias", {C}, 0, true);
    // Tied LM head: a second copy of wte when the last stage is not also the first.
    if (!shard.first_stage) add("wte", {Vp, C}, 0, false, /*primary=*/false);
  }
}

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

}  // namespace shardlm
