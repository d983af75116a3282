#include "plan/step_time.h"

#include <algorithm>

#include "model/family.h"
#include "parallel/pipeline.h"
#include "plan/traffic.h"

namespace shardlm {

namespace {

// FLOPs per token outside the blocks (LM head, embedding), per block, and the part of a
// block's that is attention over the sequence (what selective recomputation repeats).
struct FlopSplit {
  double head = 0, per_layer = 0, attention_per_layer = 0;
};

FlopSplit split_flops(const ModelConfig& cfg, int T) {
  const ModelFamily& family = model_family(cfg.family);
  ModelConfig none = cfg;
  none.n_layer = 0;
  FlopSplit f;
  f.head = family.flops_per_token(none, T);
  f.per_layer = (family.flops_per_token(cfg, T) - f.head) / cfg.n_layer;
  // flops_per_token grows linearly in T through the attention term only.
  f.attention_per_layer =
      (family.flops_per_token(cfg, T) - family.flops_per_token(cfg, 0)) / cfg.n_layer;
  return f;
}

// Forward is a third of forward + backward: full recomputation repeats the blocks' forward,
// selective the attention's.
double recompute_factor(Recompute r) {
  return r == Recompute::Full ? 4.0 / 3.0 : 1.0;
}

}  // namespace

StepTime predict_step_time(const ModelConfig& cfg, const Layout& layout, int seq_len,
                           const DeviceSpec& device, int gpus_per_node) {
  const int world = layout.world();
  const int per_node = std::min(world, gpus_per_node);
  // A CPU node's flops and memory bandwidth divide among its ranks.
  const double share = device.shared_by_node ? 1.0 / per_node : 1.0;
  const double rate = device.peak_flops * share * device.efficiency;
  const FlopSplit f = split_flops(cfg, seq_len);
  const double tokens = static_cast<double>(layout.micro_batch) * seq_len;
  const auto ranges = pipeline_stage_ranges(cfg.n_layer, layout.pp, layout.pp_layers);
  StepTime t;
  double slowest = 0, comm = 0;
  for (int s = 0; s < layout.pp; ++s) {
    const int layers = ranges[static_cast<size_t>(s)].second - ranges[static_cast<size_t>(s)].first;
    double flops = layers * f.per_layer * recompute_factor(layout.recompute);
    if (layout.recompute == Recompute::Selective) flops += layers * f.attention_per_layer / 3.0;
    if (s == layout.pp - 1) flops += f.head;
    slowest = std::max(slowest, flops * tokens / layout.tp / rate);
    // Ranks are numbered TP fastest, then DP, then PP: a group spans tp, tp*dp or all ranks.
    const CommBytes b = step_bytes(cfg, layout, seq_len, s);
    auto bw = [&](int span) { return span <= gpus_per_node ? device.intra_bw : device.inter_bw; };
    comm = std::max(comm, b.tp / bw(layout.tp) + b.dp / bw(layout.tp * layout.dp) +
                              b.pp / bw(world) + b.world / bw(world));
  }
  const int M = layout.micro_batches;
  t.compute_s = slowest * (M + layout.pp - 1);
  t.bubble_s = slowest * (layout.pp - 1);
  t.comm_s = comm;
  // AdamW reads parameter, gradient and both moments and writes three of them: 28 bytes per
  // element of the rank's shard of the largest stage.
  const double params = static_cast<double>(model_family(cfg.family).num_parameters(cfg));
  const double shard = params / layout.tp / layout.pp / (layout.zero >= 1 ? layout.dp : 1);
  t.optimizer_s = 28.0 * shard / (device.mem_bw * share);
  t.total_s = t.compute_s + t.comm_s + t.optimizer_s;
  const double step_tokens = tokens * M * layout.dp;
  t.tokens_per_s = step_tokens / t.total_s;
  t.mfu = t.tokens_per_s * model_family(cfg.family).flops_per_token(cfg, seq_len) /
          (world * device.peak_flops * share);
  return t;
}

}  // namespace shardlm
