// The pieces run_training is made of: MetricsLog (JSON Lines, full precision, null for
// non-finite numbers), RunDirectory (folders, run_config.ini once, a different model refused,
// heartbeats), StopRequest (signals and the time budget), the data's tokenizer and the
// progress printer's durations.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data_test_support.h"
#include "model/config.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"
#include "train/metrics_log.h"
#include "train/progress_printer.h"
#include "train/run_data.h"
#include "train/run_directory.h"
#include "train/stop_request.h"
#include "train/throughput.h"

using namespace shardlm;
using shardlm::testing::expect_error;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test under one temporary root, removed when the program ends.
fs::path scratch(const std::string& name) {
  struct Root {
    fs::path path = shardlm::testing::make_scratch_dir("run-pieces");
    ~Root() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Root root;
  fs::create_directories(root.path / name);
  return root.path / name;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

ModelConfig small_model() {
  ModelConfig m = model_preset("tiny");
  m.n_layer = 2;
  m.n_embd = 64;
  return m;
}

}  // namespace

TEST(MetricsLog, StepAndEvalLinesHaveTheKeysInOrderAndFullPrecision) {
  const fs::path path = scratch("metrics") / "metrics.jsonl";
  {
    MetricsLog log(path);
    log.eval(0, 6.954123456789012, 2.152987654321);
    log.step({1,
              1.0 / 3.0,
              3e-3f,
              0.1 + 0.2,
              4096,
              12345.678901234,
              0.4123456789,
              1.5,
              0.25,
              0.125,
              1.0 / 16,
              123456789,
              false,
              {},
              0.4375});
    log.eval(2, 5.5, std::nullopt);
  }
  MetricsLog(path).step({3, 2.0, 6e-4f, 1.0, 8192, 1.0, 0.5, 2.0, 1.0, 0, 0, 1, true});  // appends
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], R"({"step":0,"val_loss":6.954123456789012,"val_bpb":2.152987654321})");
  EXPECT_EQ(lines[1],
            R"({"step":1,"loss":0.3333333333333333,"lr":0.003,"grad_norm":0.30000000000000004,)"
            R"("tokens":4096,"tokens_per_s":12345.678901234,"mfu":0.4123456789,"elapsed_s":1.5,)"
            R"("compute_s":0.25,"comm_s":0.125,"bubble_s":0.0625,"cpu_s":0.4375,)"
            R"("peak_mem_bytes":123456789})");
  EXPECT_EQ(lines[2], R"({"step":2,"val_loss":5.5})");
  EXPECT_NE(lines[3].find(R"("lr":0.0006,)"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find(R"(,"skipped":true})"), std::string::npos) << lines[3];
  // Every double reads back as itself; lr as the same float.
  const auto j = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(j["loss"].get<double>(), 1.0 / 3.0);
  EXPECT_EQ(j["grad_norm"].get<double>(), 0.1 + 0.2);
  EXPECT_EQ(static_cast<float>(j["lr"].get<double>()), 3e-3f);
}

TEST(MetricsLog, NonFiniteNumbersAreNull) {
  const fs::path path = scratch("nan") / "metrics.jsonl";
  {
    MetricsLog log(path);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    log.step({1, nan, 1e-3f, std::numeric_limits<double>::infinity(), 1, 1, 1, 1, true});
    log.eval(1, -std::numeric_limits<double>::infinity(), nan);
  }
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"("loss":null,)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("grad_norm":null,)"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1], R"({"step":1,"val_loss":null,"val_bpb":null})");
  EXPECT_TRUE(nlohmann::json::parse(lines[0])["loss"].is_null());
}

TEST(MetricsLog, AnEmptyPathWritesNothingAndABadOneIsNamed) {
  MetricsLog quiet("");
  quiet.eval(0, 1.0, std::nullopt);  // no file, no error
  expect_error([] { MetricsLog log("/no/such/dir/metrics.jsonl"); },
               {"metrics file", "/no/such/dir/metrics.jsonl"});
}

TEST(RunDirectory, CreatesTheFoldersAndWritesTheConfigOnce) {
  const fs::path root = scratch("rundir") / "run";
  SelfCommunicator world("world");
  const ModelConfig m = small_model();
  const std::string first = "steps = 3\n\n" + model_config_to_ini(m);
  {
    const RunDirectory dir(root, first, m, world);
    EXPECT_TRUE(fs::is_directory(dir.checkpoints()));
    EXPECT_TRUE(fs::is_directory(root / "progress"));
    EXPECT_EQ(read_file(dir.config_file()), first);
    dir.heartbeat(7);
    const std::string beat = read_file(root / "progress" / "rank_0.txt");
    EXPECT_EQ(beat.rfind("step=7 time=", 0), 0u) << beat;
    char host[256] = {};
    ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
    EXPECT_NE(beat.find(std::string(" host=") + host + "\n"), std::string::npos) << beat;
    EXPECT_EQ(beat.back(), '\n');
  }
  // A later start of the same model keeps the first config (steps may change).
  const RunDirectory again(root, "steps = 9\n\n" + model_config_to_ini(m), m, world);
  EXPECT_EQ(read_file(again.config_file()), first);
}

TEST(RunDirectory, RefusesADifferentModelNamingTheFields) {
  const fs::path root = scratch("other") / "run";
  SelfCommunicator world("world");
  const ModelConfig m = small_model();
  RunDirectory(root, model_config_to_ini(m), m, world);
  ModelConfig bigger = m;
  bigger.n_layer = 3;
  expect_error([&] { RunDirectory(root, model_config_to_ini(bigger), bigger, world); },
               {root.string(), "different model", "n_layer: 2 -> 3"});
}

TEST(RunDirectory, ReadsTheRunConfigOfEarlierVersions) {
  // run_config.ini as shardlm wrote it before the one config dialect: sectioned snake_case.
  const fs::path root = scratch("legacy") / "run";
  fs::create_directories(root);
  const ModelConfig m = small_model();
  const std::string legacy = model_config_to_ini(m) +
                             "\n[device]\ndevice=cpu\n\n[data]\ndata=synthetic\nseed=1337\n"
                             "\n[parallel]\ntp=1\npp=1\nzero=0\npp_layers=\n";
  write_file_atomic(root / "run_config.ini", legacy);
  SelfCommunicator world("world");
  const RunDirectory dir(root, "new text", m, world);
  EXPECT_EQ(read_file(dir.config_file()), legacy);  // kept as it was
  ModelConfig other = m;
  other.n_embd = 128;
  expect_error([&] { RunDirectory(root, "x", other, world); }, {"n_embd: 64 -> 128"});
  write_file_atomic(root / "run_config.ini", "[model]\nn_layer=2\n");
  expect_error([&] { RunDirectory(root, "x", m, world); },
               {(root / "run_config.ini").string(), "missing key"});
}

TEST(StopRequest, ASignalOrTheTimeBudgetAsksToStop) {
  SelfCommunicator world("world");
  StopRequest stop;
  EXPECT_EQ(stop.agree(world), 0);
  stop.set_time_budget(1e-9);  // already spent
  usleep(1000);
  EXPECT_EQ(stop.agree(world), 1);
  EXPECT_EQ(StopRequest::describe(1), "time budget");
  stop.set_time_budget(0);  // none
  EXPECT_EQ(stop.agree(world), 0);
  std::raise(SIGUSR1);  // handled: the process lives on
  EXPECT_EQ(stop.agree(world), SIGUSR1);
  EXPECT_EQ(StopRequest::describe(SIGTERM), "signal 15");
  std::raise(SIGTERM);
  EXPECT_EQ(stop.agree(world), SIGTERM);
}

TEST(Throughput, RatesOverAWindow) {
  Throughput speed(1000.0, 6.0, 6000.0);  // peak: 1000 tokens/s
  speed.step_done();
  speed.step_done();
  usleep(20000);
  const Throughput::Window w = speed.take();
  EXPECT_GT(w.seconds_per_step, 0.005);
  EXPECT_NEAR(w.tokens_per_s * w.seconds_per_step, 1000.0, 1e-6);
  EXPECT_NEAR(w.mfu, w.tokens_per_s / 1000.0, 1e-12);
  EXPECT_GE(speed.elapsed_s(), 0.02);
  SelfCommunicator world("world");
  EXPECT_EQ(peak_flops_per_rank(2.5, world), 2.5e12);
  EXPECT_GT(peak_flops_per_rank(0, world), 0.0);
}

TEST(ProgressPrinter, Durations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(61), "1m1s");
  EXPECT_EQ(format_duration(3723), "1h2m3s");
  EXPECT_EQ(format_duration(-5), "0s");
}

TEST(RunData, TheTokenizerComesFromTheDatasetAndIsNamedWhenMissing) {
  EXPECT_FALSE(open_run_tokenizer("synthetic").has_value());
  const fs::path empty = scratch("no-tokenizer");
  expect_error([&] { open_run_tokenizer(empty.string()); },
               {"--data " + empty.string(), "no tokenizer.model", "shardlm data prepare"});
  const RunFacts facts = run_facts(4, "synthetic", nullptr);
  EXPECT_EQ(facts.world_size, 4);
  EXPECT_FALSE(facts.tokenizer_vocab.has_value());
}
