#include "plan/memory_model.h"

#include <algorithm>
#include <cstdint>

#include "model/family.h"
#include "parallel/data_parallel.h"
#include "parallel/flat_buffer.h"
#include "plan/stage_params.h"

namespace shardlm {

namespace {

constexpr size_t kFloat = sizeof(float);

void add(MemoryTotals& t, MemoryRole role, size_t bytes) {
  t.by_role[static_cast<size_t>(role)] += bytes;
  t.total += bytes;
}

// Parameters, gradients and AdamW moments of DP rank `dp_rank` over the stage's flat buffer of
// F elements (padded to dp equal partitions, as the trainer pads it), and ZeRO-2/3's receive
// buffer: what the stage's FlatBuffers and GradientSync allocate, by their own rules.
MemoryTotals model_state(const Layout& layout, const StageParams& sp, int dp_rank) {
  const size_t F = sp.flat;
  const FlatRange part = GradientSync::partition(F, layout.dp, dp_rank);
  const StageStorage storage = GradientSync::storage(layout.zero, sp.units, part);
  MemoryTotals t;
  add(t, MemoryRole::Parameters, kFloat * FlatBuffer::allocated_elements(F, storage.params));
  add(t, MemoryRole::Gradients, kFloat * FlatBuffer::allocated_elements(F, storage.grads));
  if (layout.zero >= 1) add(t, MemoryRole::Gradients, kFloat * part.size());  // averaged shard
  add(t, MemoryRole::Optimizer, 2 * kFloat * (layout.zero >= 1 ? part.size() : F));
  if (layout.zero >= 2)
    add(t, MemoryRole::Communication, kFloat * GradientSync::receive_elements(sp.units, part));
  return t;
}

void add_totals(MemoryTotals& t, const MemoryTotals& more) {
  for (size_t i = 0; i < t.by_role.size(); ++i) t.by_role[i] += more.by_role[i];
  t.total += more.total;
}

// The stage's saved activations: every in-flight slot keeps what the recompute mode keeps,
// and recomputation needs one layer's dropped tensors back as a working set.
size_t activation_bytes(const ActivationFootprint& f, const Layout& layout, int layers) {
  const size_t slots = static_cast<size_t>(std::min(layout.micro_batches, layout.pp));
  const size_t L = static_cast<size_t>(layers);
  size_t kept = f.layer_total(), working = 0;
  if (layout.recompute == Recompute::Selective) {
    kept = f.layer_input + f.layer_rest;
    working = f.layer_cheap;
  } else if (layout.recompute == Recompute::Full) {
    kept = f.layer_input;
    working = f.layer_cheap + f.layer_rest + f.full_recompute_output;
  }
  return slots * (L * kept + f.slot_extra) + working + f.fixed;
}

// Everything of a stage's rank but the model state (the same on every DP rank).
RankMemory stage_rank_memory(const ModelConfig& cfg, const Layout& layout, int seq_len, int pp_rank,
                             const StageParams& sp) {
  RankMemory r;
  r.pp_rank = pp_rank;
  const ActivationFootprint f = model_family(cfg.family)
                                    .activation_footprint(cfg, stage_shard(cfg, layout, pp_rank),
                                                          layout.micro_batch, seq_len);
  add(r.persistent, MemoryRole::Activations,
      activation_bytes(f, layout, sp.layer_end - sp.layer_begin));
  // The pipeline's boundary buffers: a received activation and a received gradient [N,C].
  const size_t NC = static_cast<size_t>(layout.micro_batch) * seq_len * cfg.n_embd;
  add(r.persistent, MemoryRole::Communication, 2 * kFloat * NC);
  if (layout.pp > 1 && (sp.first || sp.last))
    add(r.transient, MemoryRole::Communication, kFloat * sp.largest_tied);
  return r;
}

RankMemory with_model_state(RankMemory r, const MemoryTotals& state, int dp_rank) {
  r.dp_rank = dp_rank;
  add_totals(r.persistent, state);
  r.peak = r.persistent;
  add_totals(r.peak, r.transient);
  return r;
}

}  // namespace

RankMemory predict_rank_memory(const ModelConfig& cfg, const Layout& layout, int seq_len,
                               int pp_rank, int dp_rank) {
  const StageParams sp = stage_params(cfg, layout, pp_rank);
  return with_model_state(stage_rank_memory(cfg, layout, seq_len, pp_rank, sp),
                          model_state(layout, sp, dp_rank), dp_rank);
}

std::vector<RankMemory> predict_stage_memory(const ModelConfig& cfg, const Layout& layout,
                                             int seq_len) {
  std::vector<RankMemory> stages;
  for (int s = 0; s < layout.pp; ++s) {
    const StageParams sp = stage_params(cfg, layout, s);
    const RankMemory rest = stage_rank_memory(cfg, layout, seq_len, s, sp);
    // Below ZeRO-2 every DP rank holds the same sizes; above, the partitions differ.
    const int ranks = layout.zero >= 2 ? layout.dp : 1;
    RankMemory worst;
    for (int d = 0; d < ranks; ++d) {
      RankMemory r = with_model_state(rest, model_state(layout, sp, d), d);
      if (d == 0 || r.peak.total > worst.peak.total) worst = r;
    }
    stages.push_back(worst);
  }
  return stages;
}

RankMemory predict_worst_rank(const ModelConfig& cfg, const Layout& layout, int seq_len) {
  const std::vector<RankMemory> stages = predict_stage_memory(cfg, layout, seq_len);
  return *std::max_element(stages.begin(), stages.end(), [](const auto& a, const auto& b) {
    return a.peak.total < b.peak.total;
  });
}

}  // namespace shardlm
