#include "plan/planner.h"

#include <algorithm>
#include <string>

#include "model/family.h"
#include "plan/memory_margin.h"

namespace shardlm {

namespace {

std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

// The trainer's even split, and for pp > 1 one with a layer moved from the last stage (which
// also holds the LM head and the logits) to the first.
std::vector<std::vector<int>> stage_splits(int n_layer, int pp) {
  std::vector<std::vector<int>> splits{{}};
  if (pp > 1 && n_layer % pp == 0 && n_layer / pp >= 2) {
    std::vector<int> lighter(static_cast<size_t>(pp), n_layer / pp);
    ++lighter.front();
    --lighter.back();
    splits.push_back(lighter);
  }
  return splits;
}

void add_batch_choices(const PlanRequest& req, Layout base, std::vector<Layout>& out) {
  const int per_replica = req.global_batch / base.dp;
  for (const int B : divisors(per_replica)) {
    base.micro_batch = B;
    base.micro_batches = per_replica / B;
    for (int zero = 0; zero <= 3; ++zero) {
      if (zero > 0 && base.dp == 1) continue;  // nothing to shard over
      base.zero = zero;
      for (const Recompute r : {Recompute::None, Recompute::Selective, Recompute::Full}) {
        base.recompute = r;
        out.push_back(base);
      }
    }
  }
}

std::string batch_problem(const PlanRequest& req, const Layout& l) {
  if (req.global_batch % l.dp != 0)
    return "global batch " + std::to_string(req.global_batch) + " is not divisible by dp " +
           std::to_string(l.dp);
  return "";
}

Candidate evaluate(const PlanRequest& req, const Layout& layout) {
  Candidate c;
  c.layout = layout;
  c.memory = predict_worst_rank(req.model, layout, req.seq_len);
  c.need_bytes = memory_need_with_margin(static_cast<double>(c.memory.peak.total));
  c.time = predict_step_time(req.model, layout, req.seq_len, req.device, req.gpus_per_node);
  if (c.need_bytes > req.mem_per_device)
    c.dropped = "needs " + format_bytes(c.need_bytes) + " per rank (with margin), " +
                format_bytes(req.mem_per_device) + " available";
  c.not_yet = not_yet_runnable(layout, req.device.name != "cpu");
  return c;
}

bool faster(const Candidate& a, const Candidate& b) {
  if (a.time.total_s != b.time.total_s) return a.time.total_s < b.time.total_s;
  return a.need_bytes < b.need_bytes;
}

}  // namespace

std::vector<Layout> enumerate_layouts(const PlanRequest& req) {
  const ModelFamily& family = model_family(req.model.family);
  const int world = req.nodes * req.gpus_per_node;
  std::vector<Layout> out;
  for (const int tp : divisors(world)) {
    if (tp > req.gpus_per_node || !family.tensor_parallel_problem(req.model, tp).empty()) continue;
    for (const int pp : divisors(world / tp)) {
      if (pp > req.model.n_layer) continue;
      Layout base;
      base.tp = tp;
      base.pp = pp;
      base.dp = world / (tp * pp);
      if (!batch_problem(req, base).empty()) continue;
      for (const auto& split : stage_splits(req.model.n_layer, pp)) {
        base.pp_layers = split;
        add_batch_choices(req, base, out);
      }
    }
  }
  return out;
}

Plan make_plan(const PlanRequest& req) {
  Plan plan;
  for (const Layout& layout : enumerate_layouts(req)) {
    Candidate c = evaluate(req, layout);
    if (!c.dropped.empty())
      plan.dropped.push_back(std::move(c));
    else if (!c.not_yet.empty())
      plan.pending.push_back(std::move(c));
    else
      plan.ranked.push_back(std::move(c));
  }
  std::sort(plan.ranked.begin(), plan.ranked.end(), faster);
  std::sort(plan.pending.begin(), plan.pending.end(), faster);
  std::sort(plan.dropped.begin(), plan.dropped.end(),
            [](const Candidate& a, const Candidate& b) { return a.need_bytes < b.need_bytes; });
  return plan;
}

std::string train_command(const PlanRequest& req, const Layout& l) {
  std::string cmd = l.world() > 1 ? "mpirun -n " + std::to_string(l.world()) + " " : "";
  cmd += std::string("shardlm train ") + (req.model_is_config ? "--config " : "--model ") +
         req.model_arg + " --seq-len " + std::to_string(req.seq_len) + " --global-batch " +
         std::to_string(req.global_batch) + " --micro-batch " + std::to_string(l.micro_batch) +
         " --tp " + std::to_string(l.tp) + " --pp " + std::to_string(l.pp);
  if (!l.pp_layers.empty()) {
    std::string list;
    for (const int n : l.pp_layers) list += (list.empty() ? "" : ",") + std::to_string(n);
    cmd += " --pp-layers " + list;
  }
  if (l.zero != 0) cmd += " --zero " + std::to_string(l.zero);
  if (l.recompute != Recompute::None)
    cmd += std::string(" --recompute ") + recompute_name(l.recompute);
  cmd += std::string(" --device ") + (req.device.name == "cpu" ? "cpu" : "cuda");
  return cmd;
}

}  // namespace shardlm
