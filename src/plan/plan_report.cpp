#include "plan/plan_report.h"

#include <cstdio>

#include "model/family.h"
#include "plan/memory_margin.h"
#include "plan/traffic.h"

namespace shardlm {

namespace {

std::string row(const Candidate& c, int index) {
  const Layout& l = c.layout;
  std::string split;
  for (const int n : l.pp_layers) split += (split.empty() ? "" : ",") + std::to_string(n);
  char buf[256];
  std::snprintf(
      buf, sizeof buf, "%4d  %3d %3d %4d %4d  %-9s %4d x %-4d %-9s %11s  %9.3f  %10.0f  %5.1f%%\n",
      index, l.tp, l.pp, l.dp, l.zero, recompute_name(l.recompute), l.micro_batch, l.micro_batches,
      split.empty() ? "even" : split.c_str(), format_bytes(c.need_bytes).c_str(), c.time.total_s,
      c.time.tokens_per_s, 100.0 * c.time.mfu);
  return buf;
}

const char* kHeader =
    "   #   tp  pp   dp zero  recompute  B x M    pp-split  need/rank     step s    tokens/s    "
    "MFU\n";

void table(std::string& out, const std::vector<Candidate>& rows, int top) {
  out += kHeader;
  for (int i = 0; i < top && i < static_cast<int>(rows.size()); ++i)
    out += row(rows[static_cast<size_t>(i)], i + 1);
}

nlohmann::ordered_json roles_json(const MemoryTotals& t) {
  nlohmann::ordered_json j;
  for (int r = 0; r < kMemoryRoles; ++r)
    j[memory_role_name(static_cast<MemoryRole>(r))] = t.by_role[static_cast<size_t>(r)];
  j["total"] = t.total;
  return j;
}

// Bytes one rank of each pipeline stage sends per step, per communicator (plan/traffic.h): what
// the step time's communication is made of, and what tests/multinode measures on the wire.
nlohmann::ordered_json comm_bytes_json(const PlanRequest& req, const Layout& l) {
  nlohmann::ordered_json stages = nlohmann::ordered_json::array();
  for (int s = 0; s < l.pp; ++s) {
    const CommBytes b = step_bytes(req.model, l, req.seq_len, s);
    stages.push_back({{"tp", b.tp}, {"dp", b.dp}, {"pp", b.pp}, {"world", b.world}});
  }
  return stages;
}

nlohmann::ordered_json candidate_json(const PlanRequest& req, const Candidate& c) {
  const Layout& l = c.layout;
  nlohmann::ordered_json j;
  j["tp"] = l.tp;
  j["pp"] = l.pp;
  j["dp"] = l.dp;
  j["zero"] = l.zero;
  j["recompute"] = recompute_name(l.recompute);
  j["micro_batch"] = l.micro_batch;
  j["micro_batches"] = l.micro_batches;
  j["pp_layers"] = l.pp_layers;
  j["worst_pp_rank"] = c.memory.pp_rank;
  j["worst_dp_rank"] = c.memory.dp_rank;
  j["peak_bytes"] = roles_json(c.memory.peak);
  j["need_bytes"] = c.need_bytes;
  j["step_s"] = c.time.total_s;
  j["compute_s"] = c.time.compute_s;
  j["bubble_s"] = c.time.bubble_s;
  j["comm_s"] = c.time.comm_s;
  j["optimizer_s"] = c.time.optimizer_s;
  j["node_s"] = c.time.node_s;
  j["comm_bytes_per_stage"] = comm_bytes_json(req, l);
  j["tokens_per_s"] = c.time.tokens_per_s;
  j["mfu"] = c.time.mfu;
  if (!c.dropped.empty()) j["dropped"] = c.dropped;
  if (!c.not_yet.empty()) j["not_yet_runnable"] = c.not_yet;
  j["command"] = train_command(req, l);
  return j;
}

}  // namespace

std::string role_breakdown(const MemoryTotals& t) {
  std::string s;
  for (int r = 0; r < kMemoryRoles; ++r) {
    const size_t b = t.by_role[static_cast<size_t>(r)];
    if (b == 0) continue;
    s += (s.empty() ? "" : ", ") + std::string(memory_role_name(static_cast<MemoryRole>(r))) + " " +
         format_bytes(static_cast<double>(b));
  }
  return s;
}

std::string describe_layout(const Layout& l) {
  return "tp " + std::to_string(l.tp) + " pp " + std::to_string(l.pp) + " dp " +
         std::to_string(l.dp) + " zero " + std::to_string(l.zero) + " recompute " +
         recompute_name(l.recompute) + " micro-batch " + std::to_string(l.micro_batch) + " x " +
         std::to_string(l.micro_batches);
}

std::string plan_text(const PlanRequest& req, const Plan& plan, int top) {
  const ModelConfig& m = req.model;
  char head[1024];
  std::snprintf(head, sizeof head,
                "model %s (%s, %.3f B parameters), seq-len %d, global batch %d, %d node(s) x %d "
                "rank(s), device %s: %s per rank, %.3g TFLOP/s peak at %.0f%% efficiency\n"
                "rates: %s\n"
                "need/rank = predicted allocator peak x %.2f + %s (the preflight's margin)\n\n",
                req.model_arg.c_str(), m.family.c_str(),
                static_cast<double>(model_family(m.family).num_parameters(m)) / 1e9, req.seq_len,
                req.global_batch, req.nodes, req.gpus_per_node, req.device.name.c_str(),
                format_bytes(req.mem_per_device).c_str(), req.device.peak_flops / 1e12,
                100.0 * req.device.efficiency, req.device.rates_source.c_str(),
                1.0 + kMemoryMarginFraction, format_bytes(kMemoryMarginBytes).c_str());
  std::string out = head;
  out += std::to_string(plan.ranked.size()) + " layout(s) fit and run, fastest first:\n";
  table(out, plan.ranked, top);
  if (!plan.pending.empty()) {
    out += "\n" + std::to_string(plan.pending.size()) +
           " more fit but are not yet runnable in this build (" + plan.pending.front().not_yet +
           ", ...), predicted:\n";
    table(out, plan.pending, std::min(top, 5));
  }
  out += "\n" + std::to_string(plan.dropped.size()) + " layout(s) do not fit";
  if (!plan.dropped.empty()) out += " (the smallest of them " + plan.dropped.front().dropped + ")";
  out += "\n";
  if (plan.ranked.empty()) {
    out += "\nno layout fits: add ranks or nodes, or use a device with more memory\n";
    return out;
  }
  const Candidate& best = plan.ranked.front();
  out += "\nbest: " + describe_layout(best.layout) + "; worst rank (stage " +
         std::to_string(best.memory.pp_rank) +
         (best.layout.zero >= 2 ? ", DP rank " + std::to_string(best.memory.dp_rank) : "") +
         ") peak " + format_bytes(static_cast<double>(best.memory.peak.total)) + ": " +
         role_breakdown(best.memory.peak) + "\nrun it with:\n  " + train_command(req, best.layout) +
         "\n";
  return out;
}

nlohmann::ordered_json plan_json(const PlanRequest& req, const Plan& plan, int top) {
  nlohmann::ordered_json j;
  j["model"] = req.model_arg;
  j["family"] = req.model.family;
  j["parameters"] = model_family(req.model.family).num_parameters(req.model);
  j["seq_len"] = req.seq_len;
  j["global_batch"] = req.global_batch;
  j["nodes"] = req.nodes;
  j["gpus_per_node"] = req.gpus_per_node;
  j["device"] = req.device.name;
  j["mem_per_device"] = req.mem_per_device;
  j["efficiency"] = req.device.efficiency;
  j["attention_efficiency"] = req.device.attention_efficiency;
  if (req.device.shared_by_node) j["thread_scaling"] = req.device.thread_scaling;
  j["rates"] = req.device.rates_source;
  j["intra_node_bw"] = req.device.intra_bw;
  j["inter_node_bw"] = req.device.inter_bw;
  j["margin"] = {{"fraction", kMemoryMarginFraction}, {"bytes", kMemoryMarginBytes}};
  auto list = [&](const std::vector<Candidate>& rows, int n) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (int i = 0; i < n && i < static_cast<int>(rows.size()); ++i)
      a.push_back(candidate_json(req, rows[static_cast<size_t>(i)]));
    return a;
  };
  j["ranked"] = list(plan.ranked, top);
  j["not_yet_runnable"] = list(plan.pending, top);
  j["dropped_count"] = plan.dropped.size();
  j["dropped"] = list(plan.dropped, top);
  if (!plan.ranked.empty()) j["best_command"] = train_command(req, plan.ranked.front().layout);
  return j;
}

}  // namespace shardlm
