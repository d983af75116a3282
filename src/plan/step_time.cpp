#include "plan/step_time.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/threads.h"
#include "model/family.h"
#include "parallel/pipeline.h"
#include "plan/stage_params.h"
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
// selective the attention's (and its element-wise parts: the nonlinearity).
double recompute_factor(Recompute r) {
  return r == Recompute::Full ? 4.0 / 3.0 : 1.0;
}

// How a rank shares a CPU node (kernels/cpu/threads.h gives it max(1, cores / ranks)
// threads): the cores its threads are worth (every thread past the first adds
// thread_scaling of one), and how far the node's ranks x threads oversubscribe its cores.
struct NodeShare {
  double cores = 1;           // the rank's worth in cores while it runs
  double oversubscribed = 1;  // ranks x threads / cores, at least 1
};

NodeShare node_share(const DeviceSpec& d, int ranks_on_node) {
  if (!d.shared_by_node) return {};
  SHARDLM_CHECK(d.cores > 0, "a device shared by a node's ranks needs its core count");
  const int threads = cpu::choose_cpu_threads(0, nullptr, d.cores, ranks_on_node).threads;
  return {1.0 + d.thread_scaling * (threads - 1),
          std::max(1.0, static_cast<double>(ranks_on_node) * threads / d.cores)};
}

// What one rank runs at, per second, while it runs: its device, or on a CPU node the cores
// its threads are worth.
struct RankRates {
  double dense_flops = 0, attention_flops = 0;
  double activation_bytes = 0;  // saved activations the element-wise kernels go through
  double stream_bytes = 0;      // AdamW's update
};

RankRates rank_rates(const DeviceSpec& d, const NodeShare& n) {
  const double share = d.shared_by_node ? n.cores / d.cores : 1.0;  // of the peak and bandwidth
  RankRates r;
  r.dense_flops = d.peak_flops * share * d.efficiency;
  r.attention_flops = d.peak_flops * share * d.attention_efficiency;
  r.activation_bytes = d.activation_bw * share * std::max(1, d.cores);
  r.stream_bytes = d.mem_bw * share;
  return r;
}

// Seconds of one micro-batch's forward + backward (+ recomputation) on a rank of stage s.
double micro_batch_s(const ModelConfig& cfg, const Layout& layout, int seq_len, int s,
                     const RankRates& rates) {
  const auto ranges = pipeline_stage_ranges(cfg.n_layer, layout.pp, layout.pp_layers);
  const int layers = ranges[static_cast<size_t>(s)].second - ranges[static_cast<size_t>(s)].first;
  const FlopSplit f = split_flops(cfg, seq_len);
  const double rc = recompute_factor(layout.recompute);
  const double attention_rc = layout.recompute == Recompute::None ? 1.0 : 4.0 / 3.0;
  double dense = layers * (f.per_layer - f.attention_per_layer) * rc;
  if (s == layout.pp - 1) dense += f.head;
  const double attention = layers * f.attention_per_layer * attention_rc;
  const double tokens = static_cast<double>(layout.micro_batch) * seq_len;
  double t = tokens / layout.tp * (dense / rates.dense_flops + attention / rates.attention_flops);
  if (rates.activation_bytes > 0) {
    // The bytes the stage's kernels write per micro-batch (model/family.h's footprint, this
    // rank's TP shard), and the forward's third again for what recomputation rewrites.
    const ActivationFootprint a =
        model_family(cfg.family)
            .activation_footprint(cfg, stage_shard(cfg, layout, s), layout.micro_batch, seq_len);
    double bytes = layers * static_cast<double>(a.layer_total()) + a.slot_extra;
    if (layout.recompute == Recompute::Selective) bytes += layers * a.layer_cheap / 3.0;
    if (layout.recompute == Recompute::Full)
      bytes += layers * static_cast<double>(a.layer_cheap + a.layer_rest) / 3.0;
    t += bytes / rates.activation_bytes;
  }
  return t;
}

}  // namespace

StepTime predict_step_time(const ModelConfig& cfg, const Layout& layout, int seq_len,
                           const DeviceSpec& device, int gpus_per_node) {
  const int world = layout.world();
  const int per_node = std::min(world, gpus_per_node);
  const NodeShare node = node_share(device, per_node);
  const RankRates rates = rank_rates(device, node);
  const int M = layout.micro_batches;
  // AdamW reads parameter, gradient and both moments and writes three of them: 28 bytes per
  // element of the rank's shard of the largest stage.
  const double params = static_cast<double>(model_family(cfg.family).num_parameters(cfg));
  const double shard = params / layout.tp / layout.pp / (layout.zero >= 1 ? layout.dp : 1);
  StepTime t;
  t.optimizer_s = 28.0 * shard / rates.stream_bytes;
  double slowest = 0, comm = 0, work = 0;
  for (int s = 0; s < layout.pp; ++s) {
    const double mb = micro_batch_s(cfg, layout, seq_len, s, rates);
    slowest = std::max(slowest, mb);
    // Ranks are numbered TP fastest, then DP, then PP: a group spans tp, tp*dp or all ranks.
    const CommBytes b = step_bytes(cfg, layout, seq_len, s);
    auto bw = [&](int span) { return span <= gpus_per_node ? device.intra_bw : device.inter_bw; };
    const double stage_comm = b.tp / bw(layout.tp) + b.dp / bw(layout.tp * layout.dp) +
                              b.pp / bw(world) + b.world / bw(world);
    comm = std::max(comm, stage_comm);
    // A rank's busy time: its computation, dearer on shared cores, and its messages, which
    // MPI copies through shared memory with the same cores.
    work += (M * mb + t.optimizer_s) * device.oversubscription_cost + stage_comm;
  }
  t.compute_s = slowest * (M + layout.pp - 1);
  t.bubble_s = slowest * (layout.pp - 1);
  t.comm_s = comm;
  // Ranks that oversubscribe their node's cores take turns: the step lasts at least the busy
  // time of all of them over the cores their threads are worth.
  if (node.oversubscribed > 1) t.node_s = work / layout.pp * per_node * node.cores / device.cores;
  t.total_s = std::max(t.compute_s + t.comm_s + t.optimizer_s, t.node_s);
  const double step_tokens = static_cast<double>(layout.micro_batch) * seq_len * M * layout.dp;
  t.tokens_per_s = step_tokens / t.total_s;
  const double share = device.shared_by_node ? 1.0 / per_node : 1.0;  // of the node's peak
  t.mfu = t.tokens_per_s * model_family(cfg.family).flops_per_token(cfg, seq_len) /
          (world * device.peak_flops * share);
  return t;
}

}  // namespace shardlm
