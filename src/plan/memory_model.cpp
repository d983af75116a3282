#include "plan/memory_model.h"

#include <algorithm>
#include <cstdint>

#include "model/family.h"
#include "plan/stage_params.h"

namespace shardlm {

namespace {

constexpr size_t kFloat = sizeof(float);
// ZeRO-2/3's gradient bucket: the same 2^24 elements as the DP all-reduce's buckets.
constexpr size_t kGradBucket = size_t{1} << 24;

void add(MemoryTotals& t, MemoryRole role, size_t bytes) {
  t.by_role[static_cast<size_t>(role)] += bytes;
  t.total += bytes;
}

// Parameters, gradients and AdamW moments over the flat buffer of F elements (padded to dp
// equal partitions, as the trainer pads it), by ZeRO stage.
void add_model_state(MemoryTotals& t, const Layout& layout, size_t F, size_t largest_layer) {
  const size_t part = F / static_cast<size_t>(layout.dp);
  // ZeRO-3 keeps its partition and all-gathers one layer's parameters at a time.
  add(t, MemoryRole::Parameters,
      kFloat * (layout.zero >= 3 ? part + std::min(F, largest_layer) : F));
  if (layout.zero <= 1) add(t, MemoryRole::Gradients, kFloat * F);     // the full buffer
  if (layout.zero == 1) add(t, MemoryRole::Gradients, kFloat * part);  // the reduced shard
  // ZeRO-2/3: the shard plus one bucket being reduce-scattered.
  if (layout.zero >= 2) add(t, MemoryRole::Gradients, kFloat * (part + std::min(F, kGradBucket)));
  add(t, MemoryRole::Optimizer, 2 * kFloat * (layout.zero >= 1 ? part : F));
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
    working = f.layer_cheap + f.layer_rest;
  }
  return slots * (L * kept + f.slot_extra) + working + f.fixed;
}

}  // namespace

RankMemory predict_rank_memory(const ModelConfig& cfg, const Layout& layout, int seq_len,
                               int pp_rank) {
  const StageParams sp = stage_params(cfg, layout, pp_rank);
  RankMemory r;
  r.pp_rank = pp_rank;
  add_model_state(r.persistent, layout, sp.flat, sp.largest_layer);
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
  r.peak = r.persistent;
  for (size_t i = 0; i < r.peak.by_role.size(); ++i) r.peak.by_role[i] += r.transient.by_role[i];
  r.peak.total += r.transient.total;
  return r;
}

std::vector<RankMemory> predict_stage_memory(const ModelConfig& cfg, const Layout& layout,
                                             int seq_len) {
  std::vector<RankMemory> stages;
  for (int s = 0; s < layout.pp; ++s)
    stages.push_back(predict_rank_memory(cfg, layout, seq_len, s));
  return stages;
}

RankMemory predict_worst_rank(const ModelConfig& cfg, const Layout& layout, int seq_len) {
  const std::vector<RankMemory> stages = predict_stage_memory(cfg, layout, seq_len);
  return *std::max_element(stages.begin(), stages.end(), [](const auto& a, const auto& b) {
    return a.peak.total < b.peak.total;
  });
}

}  // namespace shardlm
