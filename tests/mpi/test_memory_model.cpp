// The planner's memory model against the allocator (issue 12): on 4 ranks, for both families
// and several layouts (tp, pp, dp, ZeRO 0-3, recompute none/selective/full, uneven stage
// split, tied embeddings across stages), every rank builds the trainer, compares the
// allocator's live bytes with its own predicted persistent bytes by role, trains two steps and
// compares the allocator's peak with the predicted peak (total and by role): all exact.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/synthetic.h"
#include "kernels/backend.h"
#include "model/recompute.h"
#include "parallel/mesh.h"
#include "plan/memory_model.h"
#include "train/memory_preflight.h"
#include "train/trainer.h"

using namespace shardlm;

namespace {

struct Case {
  const char* family;
  int tp, pp, zero, micro_batches;
  std::vector<int> pp_layers;
  int tie = 0;
  Recompute recompute = Recompute::None;
};

TrainSettings settings_for(const Case& c) {
  TrainSettings st;
  st.model = model_preset(std::string(c.family) == "llama" ? "llama-tiny" : "tiny");
  st.model.n_layer = 4;
  st.model.vocab_size = 300;
  st.model.max_seq_len = 32;
  if (c.tie) st.model.tie_embeddings = 1;
  st.micro_batch = 2;
  st.seq_len = 24;
  st.micro_batches = c.micro_batches;
  st.zero_stage = c.zero;
  st.recompute = c.recompute;
  st.pipeline_layers = c.pp_layers;
  return st;
}

void fill_batch(uint64_t first, int count, int32_t* tokens, int32_t* targets) {
  synthetic_samples(3, 300, 24, first, count, tokens, targets);
}

void check_case(const Case& c) {
  Mesh mesh(c.tp, c.pp);
  const TrainSettings st = settings_for(c);
  KernelBackend& be = cpu_backend();
  ASSERT_EQ(be.memory().live().total, 0u) << "a previous case leaked backend memory";
  be.memory().reset_peak();
  const std::string name =
      std::string(c.family) + " tp" + std::to_string(c.tp) + " pp" + std::to_string(c.pp) + " dp" +
      std::to_string(mesh.sizes().dp) + " zero" + std::to_string(c.zero) + " recompute " +
      recompute_name(c.recompute) + " rank " + std::to_string(mesh.world_rank());
  const RankMemory predicted = predict_rank_memory(st.model, train_layout(st, mesh.sizes()),
                                                   st.seq_len, mesh.pp_rank(), mesh.dp_rank());
  {
    Trainer trainer(st, mesh, be);
    const MemoryTotals live = be.memory().live();
    for (int r = 0; r < kMemoryRoles; ++r)
      EXPECT_EQ(live.by_role[r], predicted.persistent.by_role[r])
          << name << ": " << memory_role_name(static_cast<MemoryRole>(r)) << " at start";
    for (int step = 0; step < 2; ++step)
      trainer.train_step(step, step * trainer.samples_per_step(), fill_batch);
    const MemoryTotals peak = be.memory().peak();
    // The issue asks for 10%; the model is exact, so any byte it misses fails here.
    EXPECT_EQ(peak.total, predicted.peak.total) << name << ": peak";
    for (int r = 0; r < kMemoryRoles; ++r)
      EXPECT_EQ(peak.by_role[r], predicted.peak.by_role[r])
          << name << ": " << memory_role_name(static_cast<MemoryRole>(r)) << " peak";
  }
  EXPECT_EQ(be.memory().live().total, 0u) << name << ": the trainer did not free everything";
}

}  // namespace

TEST(MemoryModel, PredictedPeakMatchesTheAllocatorOnEveryRank) {
  ASSERT_EQ(Mesh(1, 1).world_size(), 4) << "run with 4 ranks";
  const std::vector<Case> cases = {
      {"gpt2", 1, 1, 0, 2, {}},  {"gpt2", 2, 2, 0, 4, {}},     {"gpt2", 1, 2, 1, 3, {3, 1}},
      {"gpt2", 2, 1, 1, 1, {}},  {"gpt2", 1, 4, 0, 4, {}},     {"llama", 1, 1, 1, 2, {}},
      {"llama", 2, 2, 0, 4, {}}, {"llama", 1, 2, 0, 2, {}, 1}, {"llama", 2, 1, 1, 2, {}},
  };
  for (const Case& c : cases) check_case(c);
}

// ZeRO-2/3 (the layer windows, ZeRO-3's partitions that differ per DP rank, the reduce-scatter's
// receive buffer) and activation recomputation (selective: one layer's attention internals and
// nonlinearity shared; full: one layer's working set and the discarded block output).
TEST(MemoryModel, ZeroTwoThreeAndRecomputeMatchTheAllocator) {
  ASSERT_EQ(Mesh(1, 1).world_size(), 4) << "run with 4 ranks";
  using R = Recompute;
  const std::vector<Case> cases = {
      {"gpt2", 1, 1, 2, 1, {}},
      {"gpt2", 1, 1, 3, 2, {}, 0, R::Selective},
      {"gpt2", 2, 1, 3, 2, {}, 0, R::Full},
      {"gpt2", 1, 2, 2, 3, {3, 1}, 0, R::Full},
      {"gpt2", 1, 1, 0, 2, {}, 0, R::Selective},
      {"llama", 1, 1, 3, 1, {}},
      {"llama", 2, 1, 2, 2, {}, 0, R::Selective},
      {"llama", 1, 2, 3, 2, {}, 1, R::Full},
      {"llama", 2, 2, 0, 4, {}, 0, R::Full},
  };
  for (const Case& c : cases) check_case(c);
}
