// Checkpoints load into any layout. For each layout a run trains 3 steps, saves, trains 3 more
// and saves again. Then every layout B resumes from every layout A's step-3 checkpoint
// (parameters, AdamW moments and the data position) and trains to step 6: each step's loss
// matches A's own continuation to 1e-5, and the final weights match A's final checkpoint to
// 1e-5 (bit-identical when B == A: exact resume). GPT-2 over {1, tp2, pp2, tp2pp2, dp2 with
// ZeRO-1, tp2pp2dp2, dp2 with ZeRO-2, pp2dp2 with ZeRO-3}; Llama (GQA with tp = n_kv_head,
// untied head) over {1, tp2, pp2, dp2 with ZeRO-1, tp2pp2dp2 with ZeRO-1, tp2dp2 with ZeRO-2,
// dp2 with ZeRO-3}. Runs on 8 ranks; a layout of N ranks uses the first N.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "data/synthetic.h"
#include "parallel/mesh.h"
#include "parallel/mpi_comm.h"
#include "support_params.h"
#include "train/checkpointing.h"
#include "train/trainer.h"

using namespace shardlm;
using shardlm::testing::stage_params_on_host;
namespace fs = std::filesystem;

namespace {

struct Layout {
  const char* name;
  int tp, pp, zero, ranks;
};
constexpr int kGlobalMicroBatches = 4;
constexpr int kMidStep = 3, kSteps = 6;

ModelConfig gpt2_model() {
  ModelConfig m;
  m.n_layer = 4;
  m.n_head = 4;
  m.n_embd = 32;
  m.vocab_size = 200;
  m.max_seq_len = 16;
  return m;
}

// 4 query heads over 2 key/value heads (tp2 owns one each), SwiGLU 40 wide, untied head.
ModelConfig llama_model() {
  ModelConfig m = gpt2_model();
  m.family = "llama";
  m.n_kv_head = 2;
  m.intermediate_size = 40;
  return m;
}

TrainSettings settings_for(const ModelConfig& model, int dp) {
  TrainSettings st;
  st.model = model;
  st.micro_batch = 2;
  st.seq_len = 12;
  st.micro_batches = kGlobalMicroBatches / dp;
  st.optim.lr = 3e-3f;
  st.optim.min_lr = 3e-4f;
  st.optim.warmup_steps = 2;
  st.optim.total_steps = kSteps;
  st.optim.eps = 1e-5f;  // see test_parallel_equivalence.cpp
  st.seed = 7;
  return st;
}

void fill_batch(uint64_t first, int count, int32_t* tokens, int32_t* targets) {
  synthetic_samples(5, 200, 12, first, count, tokens, targets);
}

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Runs fn on a mesh of the first `n` world ranks; the others wait at the closing barrier.
void on_first_ranks(int n, const std::function<void(MPI_Comm)>& fn) {
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() < n ? 0 : MPI_UNDEFINED, world_rank(), &sub);
  if (sub != MPI_COMM_NULL) {
    fn(sub);
    MPI_Comm_free(&sub);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

fs::path shared_temp_dir() {
  char path[4096] = {0};
  if (world_rank() == 0) {
    std::string tmpl = (fs::temp_directory_path() / "shardlm_reshard_XXXXXX").string();
    std::strncpy(path, mkdtemp(tmpl.data()), sizeof(path) - 1);
  }
  MPI_Bcast(path, sizeof(path), MPI_CHAR, 0, MPI_COMM_WORLD);
  return path;
}

std::vector<float> view_of(const std::vector<float>& flat, const TensorView& v) {
  const auto first = flat.begin() + static_cast<std::ptrdiff_t>(v.flat_offset);
  return std::vector<float>(first, first + static_cast<std::ptrdiff_t>(v.numel));
}

// Every layout of `layouts` resumes every other's checkpoint (the file comment).
void check_reshard_matrix(const ModelConfig& model, const std::vector<Layout>& layouts) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ASSERT_GE(world, 8) << "run with 8 ranks";
  const fs::path root = shared_temp_dir();
  BatchSource data = fill_batch;
  const size_t count = layouts.size();
  // losses[a][s]: layout a's own loss at step s (known to every rank after phase A).
  std::vector<std::vector<double>> losses(count, std::vector<double>(kSteps, 0.0));

  for (size_t a = 0; a < count; ++a) {
    const Layout& L = layouts[a];
    on_first_ranks(L.ranks, [&](MPI_Comm comm) {
      MpiCommunicator base(comm, "base");
      Mesh mesh(base, L.tp, L.pp);
      TrainSettings st = settings_for(model, mesh.sizes().dp);
      st.zero_stage = L.zero;
      Trainer tr(st, mesh, cpu_backend());
      for (int s = 0; s < kSteps; ++s) {
        if (s == kMidStep)
          save_training_checkpoint(tr, root / L.name / "mid",
                                   {s, s * tr.samples_per_step(), "[model]\n", {}});
        losses[a][static_cast<size_t>(s)] = tr.train_step(s, data).loss;
      }
      save_training_checkpoint(tr, root / L.name / "final",
                               {kSteps, kSteps * tr.samples_per_step(), "[model]\n", {}});
    });
    MPI_Bcast(losses[a].data(), kSteps, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  }

  for (size_t a = 0; a < count; ++a) {
    for (size_t b = 0; b < count; ++b) {
      const Layout& A = layouts[a];
      const Layout& B = layouts[b];
      const std::string pair = std::string(A.name) + " -> " + B.name;
      on_first_ranks(B.ranks, [&](MPI_Comm comm) {
        MpiCommunicator base(comm, "base");
        Mesh mesh(base, B.tp, B.pp);
        TrainSettings st = settings_for(model, mesh.sizes().dp);
        st.zero_stage = B.zero;
        Trainer tr(st, mesh, cpu_backend());
        {
          CheckpointReader mid(*find_latest_checkpoint(root / A.name / "mid"));
          load_training_checkpoint(tr, mid);
          ASSERT_EQ(mid.metadata_int("samples_consumed"),
                    static_cast<int64_t>(kMidStep * tr.samples_per_step()));
        }
        for (int s = kMidStep; s < kSteps; ++s) {
          const double want = losses[a][static_cast<size_t>(s)];
          const double got = tr.train_step(s, data).loss;
          if (a == b)
            EXPECT_EQ(got, want) << pair << " step " << s
                                 << ": same-layout resume must be bit-exact";
          else
            EXPECT_NEAR(got, want, 1e-5 * want) << pair << " step " << s;
        }
        CheckpointReader final_a(*find_latest_checkpoint(root / A.name / "final"));
        const std::vector<float> all_params = stage_params_on_host(tr);  // ZeRO-3: every layer
        for (const auto& v : tr.model().layout().views()) {
          std::vector<float> want(v.numel);
          final_a.read(kRoleParam, v.name, v.offset, v.local_shape, want.data());
          const std::vector<float> got = view_of(all_params, v);
          if (a == b) {
            EXPECT_EQ(0, std::memcmp(got.data(), want.data(), v.numel * sizeof(float)))
                << pair << ": " << v.name;
            continue;
          }
          double err = 0,
                 scale = 1e-3;  // floor: a block of near-zero values is compared absolutely
          for (size_t i = 0; i < want.size(); ++i) {
            err = std::max(err, static_cast<double>(std::abs(got[i] - want[i])));
            scale = std::max(scale, static_cast<double>(std::abs(want[i])));
          }
          EXPECT_LE(err, 1e-5 * scale) << pair << ": " << v.name << " on " << mesh.describe();
        }
      });
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) fs::remove_all(root);
}

}  // namespace

TEST(CheckpointReshard, EveryLayoutResumesEveryOther) {
  check_reshard_matrix(gpt2_model(), {{"single", 1, 1, 0, 1},
                                      {"tp2", 2, 1, 0, 2},
                                      {"pp2", 1, 2, 0, 2},
                                      {"tp2pp2", 2, 2, 0, 4},
                                      {"dp2zero1", 1, 1, 1, 2},
                                      {"tp2pp2dp2", 2, 2, 0, 8},
                                      {"dp2zero2", 1, 1, 2, 2},
                                      {"pp2dp2zero3", 1, 2, 3, 4}});
}

TEST(CheckpointReshard, LlamaLayoutsResumeEachOther) {
  check_reshard_matrix(llama_model(), {{"single", 1, 1, 0, 1},
                                       {"tp2", 2, 1, 0, 2},
                                       {"pp2", 1, 2, 0, 2},
                                       {"dp2zero1", 1, 1, 1, 2},
                                       {"tp2pp2dp2zero1", 2, 2, 1, 8},
                                       {"tp2dp2zero2", 2, 1, 2, 4},
                                       {"dp2zero3", 1, 1, 3, 2}});
}
