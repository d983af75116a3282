// The memory accounting, the host-memory sources, the planner's enumeration and the
// trainer's preflight refusal on one process (issues 12 and 18). The per-rank predictions
// against the allocator are test_memory_model (MPI); the CLI cases are cli_memory-*.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "kernels/memory_account.h"
#include "model/family.h"
#include "parallel/mesh.h"
#include "plan/host_memory.h"
#include "plan/memory_margin.h"
#include "plan/planner.h"
#include "support_errors.h"
#include "train/memory_preflight.h"

using namespace shardlm;
using shardlm::testing::expect_error;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("shardlm_memory_plan_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// Sets an environment variable for one scope.
struct ScopedEnv {
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_); }
  const char* name_;
};

PlanRequest tiny_request(int nodes, int per_node, int global_batch,
                         const std::string& device = "cpu") {
  PlanRequest req;
  req.model = model_preset("tiny");
  req.model_arg = "tiny";
  req.seq_len = 64;
  req.global_batch = global_batch;
  req.nodes = nodes;
  req.gpus_per_node = per_node;
  req.device = device_spec(device);
  req.mem_per_device = 8.0 * (1 << 30);
  return req;
}

}  // namespace

TEST(MemoryAccount, TracksLiveAndPeakByRole) {
  MemoryAccount a;
  int x = 0, y = 0, z = 0;
  a.on_alloc(&x, 100, MemoryRole::Parameters);
  a.on_alloc(&y, 50, MemoryRole::Activations);
  a.on_free(&y);
  a.on_alloc(&z, 30, MemoryRole::Activations);
  EXPECT_EQ(a.live().total, 130u);
  EXPECT_EQ(a.peak().total, 150u);  // the highest moment, not the sum of role peaks
  EXPECT_EQ(a.peak().of(MemoryRole::Activations), 50u);
  EXPECT_EQ(a.live().of(MemoryRole::Activations), 30u);
  a.reset_peak();
  EXPECT_EQ(a.peak().total, 130u);
  expect_error([&] { a.on_free(&a); }, {"never allocated"});
  expect_error([&] { a.on_alloc(&x, 1, MemoryRole::Workspace); }, {"allocated twice"});
}

TEST(HostMemory, ReadsMeminfoAndTheTighterCgroupLimit) {
  const fs::path dir = scratch("host");
  write(dir / "meminfo", "MemTotal: 100 kB\nMemAvailable:    4194304 kB\n");  // 4 GiB
  const ScopedEnv meminfo("SHARDLM_MEMINFO", (dir / "meminfo").string());
  {
    // cgroup v2 without a limit: MemAvailable only.
    write(dir / "memory.max", "max\n");
    const ScopedEnv cg("SHARDLM_CGROUP_DIR", dir.string());
    const HostMemory m = read_host_memory();
    EXPECT_EQ(m.mem_available, uint64_t{4} << 30);
    EXPECT_FALSE(m.cgroup_limited);
    EXPECT_EQ(m.usable(), uint64_t{4} << 30);
  }
  {
    // v2 limit 3 GiB with 1 GiB used: 2 GiB usable.
    write(dir / "memory.max", std::to_string(uint64_t{3} << 30) + "\n");
    write(dir / "memory.current", std::to_string(uint64_t{1} << 30) + "\n");
    const ScopedEnv cg("SHARDLM_CGROUP_DIR", dir.string());
    const HostMemory m = read_host_memory();
    EXPECT_TRUE(m.cgroup_limited);
    EXPECT_EQ(m.usable(), uint64_t{2} << 30);
    EXPECT_NE(m.describe().find("memory cgroup"), std::string::npos);
  }
  {
    // v1 names.
    const fs::path v1 = dir / "v1";
    fs::create_directories(v1);
    write(v1 / "memory.limit_in_bytes", std::to_string(uint64_t{1} << 30));
    write(v1 / "memory.usage_in_bytes", "0");
    const ScopedEnv cg("SHARDLM_CGROUP_DIR", v1.string());
    EXPECT_EQ(read_host_memory().usable(), uint64_t{1} << 30);
  }
  write(dir / "bad", "MemTotal: 1 kB\n");
  const ScopedEnv bad("SHARDLM_MEMINFO", (dir / "bad").string());
  expect_error([] { read_host_memory(); }, {"has no MemAvailable"});
}

TEST(Planner, EnumeratesOnlyValidLayouts) {
  // tiny: 4 heads, 2 layers; 2 nodes x 4 ranks, global batch 8.
  const PlanRequest req = tiny_request(2, 4, 8);
  const auto layouts = enumerate_layouts(req);
  ASSERT_FALSE(layouts.empty());
  std::set<int> tps;
  for (const Layout& l : layouts) {
    EXPECT_EQ(l.world(), 8);
    EXPECT_LE(l.tp, 4) << "tp stays within a node";
    EXPECT_LE(l.pp, 2) << "every stage needs a layer";
    EXPECT_EQ(l.dp * l.micro_batch * l.micro_batches, 8);
    if (l.dp == 1) {
      EXPECT_EQ(l.zero, 0) << "nothing to shard over";
    }
    tps.insert(l.tp);
  }
  EXPECT_EQ(tps, (std::set<int>{1, 2, 4}));
  // n_head 6 is not divisible by 4: tp 4 is not offered.
  PlanRequest six = req;
  six.model.n_head = 6;
  six.model.n_embd = 384;
  for (const Layout& l : enumerate_layouts(six)) EXPECT_NE(l.tp, 4);
}

TEST(Planner, RanksFastestFirstAndDropsWhatDoesNotFit) {
  PlanRequest req = tiny_request(1, 4, 8);
  const Plan roomy = make_plan(req);
  ASSERT_FALSE(roomy.ranked.empty());
  for (size_t i = 1; i < roomy.ranked.size(); ++i)
    EXPECT_LE(roomy.ranked[i - 1].time.total_s, roomy.ranked[i].time.total_s);
  for (const Candidate& c : roomy.pending) EXPECT_FALSE(c.not_yet.empty());
  // Memory between the smallest and largest need: some are dropped, with the numbers.
  double lo = 1e300, hi = 0;
  for (const auto* list : {&roomy.ranked, &roomy.pending})
    for (const Candidate& c : *list)
      lo = std::min(lo, c.need_bytes), hi = std::max(hi, c.need_bytes);
  req.mem_per_device = (lo + hi) / 2;
  const Plan tight = make_plan(req);
  ASSERT_FALSE(tight.dropped.empty());
  for (const Candidate& c : tight.dropped) {
    EXPECT_GT(c.need_bytes, req.mem_per_device);
    EXPECT_NE(c.dropped.find("available"), std::string::npos);
  }
  for (const Candidate& c : tight.ranked) EXPECT_LE(c.need_bytes, req.mem_per_device);
  const std::string cmd = train_command(req, roomy.ranked.front().layout);
  EXPECT_EQ(cmd.rfind("mpirun -n 4 shardlm train --model tiny --seq-len 64 --global-batch 8", 0),
            0u)
      << cmd;
  EXPECT_NE(cmd.find("--device cpu"), std::string::npos);
  // On GPUs, several ranks wait for the NCCL communicator: predicted, not runnable.
  const PlanRequest gpu_req = tiny_request(1, 4, 8, "h100");
  const Plan gpus = make_plan(gpu_req);
  EXPECT_TRUE(gpus.ranked.empty());
  ASSERT_FALSE(gpus.pending.empty());
  EXPECT_NE(gpus.pending.front().not_yet.find("NCCL"), std::string::npos);
  EXPECT_NE(train_command(gpu_req, gpus.pending.front().layout).find("--device cuda"),
            std::string::npos);
}

TEST(MemoryPreflight, RefusesWithTheNeedByRoleWhatIsFreeAndALayoutThatFits) {
  const fs::path dir = scratch("preflight");
  RunConfig cfg;
  cfg.model = model_preset("tiny");
  cfg.model_preset = "tiny";
  cfg.seq_len = 256;
  cfg.global_batch = 8;
  TrainSettings st;
  st.model = cfg.model;
  st.seq_len = 256;
  st.micro_batch = 8;
  st.micro_batches = 1;
  Mesh mesh(1, 1);
  const RankMemory need = predict_rank_memory(st.model, train_layout(st, mesh.sizes()), 256, 0, 0);
  // Free memory: a little under what micro-batch 8 needs with the margin, so that
  // micro-batch 1 x 8 fits.
  const auto free_kib =
      static_cast<uint64_t>(0.99 * memory_need_with_margin(static_cast<double>(need.peak.total))) /
      1024;
  write(dir / "meminfo", "MemAvailable: " + std::to_string(free_kib) + " kB\n");
  const ScopedEnv meminfo("SHARDLM_MEMINFO", (dir / "meminfo").string());
  write(dir / "memory.max", "max\n");
  const ScopedEnv cg("SHARDLM_CGROUP_DIR", dir.string());
  expect_error([&] { check_memory_fits(cfg, st, mesh, cpu_backend()); },
               {"this run does not fit in memory: rank 0", "parameters", "gradients", "optimizer",
                "activations", "free of host memory (MemAvailable", "a layout that fits:",
                "shardlm train --model tiny --seq-len 256 --global-batch 8 --micro-batch",
                "--memory-check off"});
  cfg.memory_check = false;
  check_memory_fits(cfg, st, mesh, cpu_backend());  // skipped: no throw
}
