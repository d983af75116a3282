#include "train/memory_preflight.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "plan/host_memory.h"
#include "plan/memory_margin.h"
#include "plan/memory_model.h"
#include "plan/plan_report.h"
#include "plan/planner.h"

namespace shardlm {

namespace {

// One rank's figures, gathered as doubles: [need, free, predicted peak, pp rank, node ranks,
// --async-save snapshot, dp rank].
constexpr size_t kFields = 7;

// The planner's request for this run on `world` ranks of `per_node` per node, each with
// `free_bytes` (device figures for the time ranking: this machine's for cpu, an H100's as a
// stand-in for the GPU, which is only used to order the layouts).
PlanRequest request_for(const RunConfig& cfg, const KernelBackend& be, int world, int per_node,
                        double free_bytes) {
  PlanRequest req;
  req.model = cfg.model;
  req.model_arg = cfg.model_preset.empty() ? "CONFIG" : cfg.model_preset;
  req.seq_len = cfg.seq_len;
  req.global_batch = static_cast<int>(cfg.global_batch);
  req.gpus_per_node = std::min(world, std::max(1, per_node));
  req.nodes = std::max(1, world / req.gpus_per_node);
  req.device = device_spec(be.host_memory() ? "cpu" : "h100");
  req.mem_per_device = free_bytes;
  return req;
}

// "a layout that fits: CMD" (on more ranks where this many are too few), and before it a
// layout on fewer ranks that would fit but this build cannot run yet; or that nothing fits.
std::string what_fits(const RunConfig& cfg, const KernelBackend& be, int world, int per_node,
                      double free_bytes) {
  std::string pending;
  for (int w = world; w <= 64 * world; w *= 2) {
    // More ranks as more nodes like this one, each rank with the same free memory.
    const PlanRequest req = request_for(cfg, be, w, std::min(per_node, w), free_bytes);
    const Plan plan = make_plan(req);
    const std::string where = w == world
                                  ? ""
                                  : " on " + std::to_string(w) + " ranks (" +
                                        std::to_string(req.nodes) + " node(s) like this one, " +
                                        std::to_string(req.gpus_per_node) + " rank(s) each)";
    if (!plan.ranked.empty())
      return pending + "a layout that fits" + where + ": " +
             describe_layout(plan.ranked.front().layout) + "\n  " +
             train_command(req, plan.ranked.front().layout);
    if (!plan.pending.empty() && pending.empty())
      pending = "it would fit" + where + " with " + describe_layout(plan.pending.front().layout) +
                ", which this build cannot run yet (" + plan.pending.front().not_yet + ");\n";
  }
  return pending + "no runnable layout fits on up to " + std::to_string(64 * world) +
         " ranks with this much memory each; shorten --seq-len or choose a smaller model";
}

// --async-save's snapshot (train/slice_snapshot.h) on a host-memory backend: at most the rank's
// parameters and AdamW moments (what it writes to a checkpoint). On a GPU the snapshot is host
// memory while the check is of device memory, so it does not count there.
double snapshot_bytes(const RunConfig& cfg, const KernelBackend& be, const RankMemory& mine) {
  if (!cfg.async_save || !be.host_memory()) return 0;
  return static_cast<double>(mine.persistent.of(MemoryRole::Parameters) +
                             mine.persistent.of(MemoryRole::Optimizer));
}

}  // namespace

Layout train_layout(const TrainSettings& st, const MeshShape& shape) {
  Layout l;
  l.tp = shape.tp;
  l.pp = shape.pp;
  l.dp = shape.dp;
  l.zero = st.zero_stage;
  l.recompute = st.recompute;
  l.micro_batch = st.micro_batch;
  l.micro_batches = st.micro_batches;
  l.pp_layers = st.pipeline_layers;
  return l;
}

void check_memory_fits(const RunConfig& cfg, const TrainSettings& st, Mesh& mesh,
                       KernelBackend& backend) {
  if (!cfg.memory_check) return;
  const int per_node = mesh.world().ranks_on_my_node();
  const RankMemory mine = predict_rank_memory(st.model, train_layout(st, mesh.sizes()), st.seq_len,
                                              mesh.pp_rank(), mesh.dp_rank());
  const double free_bytes = backend.host_memory()
                                ? static_cast<double>(read_host_memory().usable()) / per_node
                                : static_cast<double>(backend.device_free_bytes());
  const double snapshot = snapshot_bytes(cfg, backend, mine);
  const double row[kFields] = {
      memory_need_with_margin(static_cast<double>(mine.peak.total) + snapshot),
      free_bytes,
      static_cast<double>(mine.peak.total),
      static_cast<double>(mesh.pp_rank()),
      static_cast<double>(per_node),
      snapshot,
      static_cast<double>(mesh.dp_rank())};
  std::vector<double> all(kFields * static_cast<size_t>(mesh.world_size()));
  mesh.world().all_gather(row, all.data(), kFields, DType::F64);
  // The rank with the largest shortfall, the same on every rank.
  int worst = -1;
  double shortfall = 0;
  for (int r = 0; r < mesh.world_size(); ++r) {
    const double* f = &all[kFields * static_cast<size_t>(r)];
    if (f[0] - f[1] > shortfall) shortfall = f[0] - f[1], worst = r;
  }
  if (worst < 0) return;
  const double* w = &all[kFields * static_cast<size_t>(worst)];
  const RankMemory theirs =
      predict_rank_memory(st.model, train_layout(st, mesh.sizes()), st.seq_len,
                          static_cast<int>(w[3]), static_cast<int>(w[6]));
  const std::string where =
      backend.host_memory() ? "host memory (" + read_host_memory().describe() + ", shared by " +
                                  std::to_string(static_cast<int>(w[4])) + " rank(s) on its node)"
                            : "device memory";
  fail("this run does not fit in memory: rank " + std::to_string(worst) + " (pipeline stage " +
       std::to_string(static_cast<int>(w[3])) + ") needs " + format_bytes(w[0]) +
       " = predicted peak " + format_bytes(w[2]) + " (" + role_breakdown(theirs.peak) + ")" +
       (w[5] > 0 ? " + --async-save snapshot " + format_bytes(w[5]) : "") + " + margin (" +
       std::to_string(static_cast<int>(100 * kMemoryMarginFraction)) + "% + " +
       format_bytes(kMemoryMarginBytes) + "), but has " + format_bytes(w[1]) + " free of " + where +
       ".\n" + what_fits(cfg, backend, mesh.world_size(), static_cast<int>(w[4]), w[1]) +
       "\n(--memory-check off starts anyway)");
}

}  // namespace shardlm
