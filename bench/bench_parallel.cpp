// Throughput, communication volume and pipeline bubble of one dp x tp x pp layout.
//   usage: mpirun -np N bench_parallel --tp T --pp P [--zero 0..3] [--pp-layers a,b,..]
//          [--model mini] [--n-head H] [--seq-len 256] [--micro-batch 2] [--micro-batches 8]
//          [--steps 3] [--warmup 1] [--name LABEL]
// dp = N / (T*P). Each DP rank runs --micro-batches micro-batches per step on synthetic tokens.
//
// Reported (formulas and definitions: docs/parallelism.md):
//  - tokens/s = dp * M * B * T / step time (the slowest rank's median over the timed steps);
//  - for every rank and communicator (tp, dp, pp, world) the bytes sent per step, measured as
//    the Communicator::bytes_sent() delta over the timed steps / steps, next to the analytical
//    count computed here from the model shape and layout alone. bytes_sent() counts what a ring
//    algorithm sends (mpi_comm.h), so the two must be EQUAL: a difference means a collective
//    was added, dropped or sized differently from the formula;
//  - with pp > 1, the pipeline bubble of each rank's stage over --steps extra runs of
//    Pipeline::run (forward + backward of all M micro-batches, no DP sync or update), timed
//    by wall clock as R:
//      wait fraction    = Pipeline::last_wait_seconds() / R   (time blocked in receives)
//      idle fraction    = 1 - M * (f + b) / R, with f, b the stage's forward / backward time
//                         per micro-batch measured in isolation (its ranks run while the
//                         other stages sleep), i.e. every second not spent computing;
//    next to the 1F1B theory (pp-1)/(M+pp-1) for equal stages, and the bound for the measured
//    (unequal) stages: 1 - M c_s / (sum_s c_s + (M-1) max_s c_s), c_s = f_s + b_s.
// The last line, "summary ...", is what bench/run_parallel_bench.sh tabulates.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "core/clock.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "parallel/mesh.h"
#include "plan/traffic.h"
#include "train/memory_preflight.h"
#include "train/trainer.h"

namespace {

using namespace shardlm;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Options {
  int tp = 1, pp = 1, zero = 0;
  std::vector<int> pp_layers;
  std::string model = "mini", name;
  int n_head = 0;  // 0: the preset's
  int seq_len = 256, micro_batch = 2, micro_batches = 8, steps = 3, warmup = 1;
};

// Throws on an unknown flag, a missing value or a bad number (the same on every rank, so every
// rank throws); nullopt for --help.
std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  bench::Flags flags(
      "usage: mpirun -np N bench_parallel --tp T --pp P [--zero 0..3] [--pp-layers a,b,..]\n"
      "       [--model mini] [--n-head H] [--seq-len 256] [--micro-batch 2] [--micro-batches 8]\n"
      "       [--steps 3] [--warmup 1] [--name LABEL]");
  flags.add("tp", &o.tp)
      .add("pp", &o.pp)
      .add("zero", &o.zero)
      .add("pp-layers", &o.pp_layers)
      .add("model", &o.model)
      .add("n-head", &o.n_head)
      .add("seq-len", &o.seq_len)
      .add("micro-batch", &o.micro_batch)
      .add("micro-batches", &o.micro_batches)
      .add("steps", &o.steps)
      .add("warmup", &o.warmup)
      .add("name", &o.name);
  if (!flags.parse(argc, argv)) {
    std::printf("%s\n", flags.usage().c_str());
    return std::nullopt;
  }
  if (o.steps < 1) fail("--steps must be >= 1");
  if (o.warmup < 0) fail("--warmup must be >= 0");
  return o;
}

// Seeded pseudo-random ids (data/synthetic.h), the same for every layout. The benchmark
// measures speed, so the text does not need to be learnable.
void synthetic_batch(int vocab, int T, uint64_t first, int count, int32_t* tokens /*[count,T]*/,
                     int32_t* targets /*[count,T]*/) {
  synthetic_samples(1, vocab, T, first, count, tokens, targets);
}

// ---- analytical communication volume (docs/parallelism.md, "Bytes per step") ---------------

// The planner's formulas (plan/traffic.h) for this run's layout: the bench checks them.
CommBytes analytical_bytes_per_step(const TrainSettings& st, const MeshShape& shape,
                                    const MeshCoord& at) {
  return step_bytes(st.model, train_layout(st, shape), st.seq_len, at.pp);
}

CommBytes measured_bytes(Mesh& mesh) {
  return {mesh.tp().bytes_sent(), mesh.dp().bytes_sent(), mesh.pp().bytes_sent(),
          mesh.world().bytes_sent()};
}

// ---- pipeline bubble ----------------------------------------------------------------------

struct StageTimes {
  double forward = 0, backward = 0;  // seconds per micro-batch, this stage alone
  double run = 0, wait = 0;          // Pipeline::run wall time and its receive waits, per run
};

// A barrier whose waiting ranks sleep instead of polling, so that they leave the cores to the
// ranks still working (MPI's blocking barrier spins).
void sleeping_barrier(MPI_Comm comm) {
  MPI_Request request;
  MPI_CHECK(MPI_Ibarrier(comm, &request));
  for (int done = 0;;) {
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Forward and backward of one micro-batch on this rank's stage while the other stages sleep,
// so that the stage has the machine to itself as it would have its own devices.
void time_stage_alone(Trainer& trainer, Mesh& mesh, int reps, StageTimes& out) {
  ModelStage& model = trainer.model();
  KernelBackend& be = model.backend();
  const size_t N = static_cast<size_t>(model.batch()) * model.seq_len();
  const size_t NC = N * static_cast<size_t>(model.config().n_embd);
  std::vector<int32_t> tokens(N), targets(N);
  synthetic_batch(model.config().vocab_size, model.seq_len(), 0, model.batch(), tokens.data(),
                  targets.data());
  // Stand-ins for the received activations / gradient [B,T,C]: small values, as in training.
  std::vector<float> host(NC);
  for (size_t i = 0; i < NC; ++i)
    host[i] = 0.01f * static_cast<float>(static_cast<int>(i % 201) - 100);
  float* input = be.alloc_floats(NC);
  float* output_grad = be.alloc_floats(NC);
  be.copy_from_host(input, host.data(), NC * sizeof(float));
  be.copy_from_host(output_grad, host.data(), NC * sizeof(float));
  const bool first = model.shard().first_stage, last = model.shard().last_stage;
  for (int s = 0; s < mesh.sizes().pp; ++s) {
    sleeping_barrier(MPI_COMM_WORLD);
    if (mesh.pp_rank() != s) continue;
    std::vector<double> fwd, bwd;
    for (int r = 0; r <= reps; ++r) {  // r == 0 warms up
      const double t0 = shardlm::monotonic_seconds();
      model.forward(0, tokens.data(), targets.data(), first ? nullptr : input);
      const double t1 = shardlm::monotonic_seconds();
      model.backward(0, 1.0f, last ? nullptr : output_grad);
      const double t2 = shardlm::monotonic_seconds();
      if (r == 0) continue;
      fwd.push_back(t1 - t0);
      bwd.push_back(t2 - t1);
    }
    out.forward = median(fwd);
    out.backward = median(bwd);
  }
  sleeping_barrier(MPI_COMM_WORLD);
  be.free_memory(input);
  be.free_memory(output_grad);
  model.zero_grads();
}

// `runs` runs of the 1F1B schedule alone (no DP sync, no update): median wall time and wait.
void time_pipeline_runs(Trainer& trainer, Mesh& mesh, int runs, StageTimes& out) {
  const TrainSettings& st = trainer.settings();
  const int M = st.micro_batches, B = st.micro_batch, T = st.seq_len, V = st.model.vocab_size;
  const int D = mesh.sizes().dp, r = mesh.dp_rank();
  MicroBatchFetch fetch = [&](int m, int32_t* tokens, int32_t* targets) {
    synthetic_batch(V, T, (static_cast<uint64_t>(m) * D + r) * B, B, tokens, targets);
  };
  std::vector<double> wall, wait;
  for (int i = 0; i < runs; ++i) {
    trainer.model().zero_grads();
    mesh.world().barrier();
    const double t0 = shardlm::monotonic_seconds();
    trainer.pipeline().run(M, fetch, 1.0f / static_cast<float>(M), true);
    wall.push_back(shardlm::monotonic_seconds() - t0);
    wait.push_back(trainer.pipeline().last_wait_seconds());
  }
  // The run with the median wall time, and its own wait.
  const size_t mid = static_cast<size_t>(
      std::distance(wall.begin(), std::find(wall.begin(), wall.end(), median(wall))));
  out.run = wall[mid];
  out.wait = wait[mid];
  trainer.model().zero_grads();
}

// ---- report -------------------------------------------------------------------------------

// One rank's figures, gathered to rank 0 as doubles.
enum Field {
  kRank,
  kPp,
  kDp,
  kTp,
  kMeasTp,
  kMeasDp,
  kMeasPp,
  kMeasWorld,
  kAnaTp,
  kAnaDp,
  kAnaPp,
  kAnaWorld,
  kForward,
  kBackward,
  kRun,
  kWait,
  kFields
};

std::string mb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", bytes / 1e6);
  return buf;
}

int run_bench(const Options& o) {
  Mesh mesh(o.tp, o.pp);
  const MeshShape shape = mesh.sizes();
  const bool leader = mesh.world_rank() == 0;
  TrainSettings st;
  st.model = model_preset(o.model);
  if (o.n_head > 0) st.model.n_head = o.n_head;  // e.g. mini's 6 heads do not split over tp 4
  st.micro_batch = o.micro_batch;
  st.seq_len = o.seq_len;
  st.micro_batches = o.micro_batches;
  st.zero_stage = o.zero;
  st.pipeline_layers = o.pp_layers;
  st.optim.total_steps = o.warmup + o.steps;
  Trainer trainer(st, mesh, cpu_backend());
  const int V = st.model.vocab_size, T = st.seq_len;
  BatchSource data = [&](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
    synthetic_batch(V, T, first, count, tok, tgt);
  };

  for (int s = 0; s < o.warmup; ++s) trainer.train_step(s, data);
  mesh.world().barrier();
  const CommBytes before = measured_bytes(mesh);
  std::vector<double> step_s(static_cast<size_t>(o.steps));
  for (int s = 0; s < o.steps; ++s) {
    const double t0 = shardlm::monotonic_seconds();
    trainer.train_step(o.warmup + s, data);
    step_s[static_cast<size_t>(s)] = shardlm::monotonic_seconds() - t0;
  }
  const CommBytes after = measured_bytes(mesh);
  const CommBytes analytical = analytical_bytes_per_step(
      st, shape, MeshCoord{mesh.pp_rank(), mesh.dp_rank(), mesh.tp_rank()});

  StageTimes stage;
  if (shape.pp > 1) {
    time_stage_alone(trainer, mesh, std::max(o.steps, 3), stage);
    time_pipeline_runs(trainer, mesh, o.steps, stage);
  }

  // The slowest rank decides each step.
  mesh.world().all_reduce(step_s.data(), step_s.size(), DType::F64, ReduceOp::Max);
  const auto per_step = [&](uint64_t a, uint64_t b) {
    return static_cast<double>(b - a) / o.steps;
  };
  std::vector<double> mine(kFields);
  mine[kRank] = mesh.world_rank();
  mine[kPp] = mesh.pp_rank();
  mine[kDp] = mesh.dp_rank();
  mine[kTp] = mesh.tp_rank();
  mine[kMeasTp] = per_step(before.tp, after.tp);
  mine[kMeasDp] = per_step(before.dp, after.dp);
  mine[kMeasPp] = per_step(before.pp, after.pp);
  mine[kMeasWorld] = per_step(before.world, after.world);
  mine[kAnaTp] = static_cast<double>(analytical.tp);
  mine[kAnaDp] = static_cast<double>(analytical.dp);
  mine[kAnaPp] = static_cast<double>(analytical.pp);
  mine[kAnaWorld] = static_cast<double>(analytical.world);
  mine[kForward] = stage.forward;
  mine[kBackward] = stage.backward;
  mine[kRun] = stage.run;
  mine[kWait] = stage.wait;
  std::vector<double> all(static_cast<size_t>(kFields) * shape.world_size());
  mesh.world().all_gather(mine.data(), all.data(), kFields, DType::F64);
  if (!leader) return 0;

  const int W = shape.world_size(), M = st.micro_batches;
  auto at = [&](int rank, Field f) { return all[static_cast<size_t>(rank) * kFields + f]; };
  const double step = median(step_s);
  const double tokens_per_step = static_cast<double>(trainer.samples_per_step()) * T;
  const char* threads = std::getenv("OMP_NUM_THREADS");
  std::printf(
      "bench_parallel: %s (%d layers, %d heads, C %d, %.1fM params), dp %d x tp %d x pp %d, "
      "ZeRO-%d, micro-batch %d x %d, "
      "M %d per DP rank, %.0f tokens/step; %d warm-up + %d timed steps; OMP_NUM_THREADS=%s\n",
      o.model.c_str(), st.model.n_layer, st.model.n_head, st.model.n_embd,
      st.model.num_parameters() / 1e6, shape.dp, shape.tp, shape.pp, o.zero, st.micro_batch, T, M,
      tokens_per_step, o.warmup, o.steps, threads ? threads : "(unset)");
  std::printf("step time: median %.3f s (min %.3f, max %.3f) -> %.0f tokens/s\n", step,
              *std::min_element(step_s.begin(), step_s.end()),
              *std::max_element(step_s.begin(), step_s.end()), tokens_per_step / step);

  std::printf(
      "\nMB sent per step by each rank, measured (bytes_sent delta / steps) | analytical:\n");
  std::printf("%4s %3s %3s %3s  %21s  %21s  %21s  %21s\n", "rank", "pp", "dp", "tp", "tp", "dp",
              "pp", "world");
  bool bytes_match = true;
  double max_tp = 0, max_dp = 0, max_pp = 0;
  for (int r = 0; r < W; ++r) {
    std::printf("%4d %3d %3d %3d ", r, static_cast<int>(at(r, kPp)), static_cast<int>(at(r, kDp)),
                static_cast<int>(at(r, kTp)));
    for (int c = 0; c < 4; ++c) {
      const double meas = at(r, static_cast<Field>(kMeasTp + c)),
                   ana = at(r, static_cast<Field>(kAnaTp + c));
      const bool ok = meas == ana;
      bytes_match = bytes_match && ok;
      // world moves a few bytes: print those in bytes, not MB.
      if (c == 3)
        std::printf(" %9.0f B |%7.0f B%s", meas, ana, ok ? " " : "!");
      else
        std::printf(" %9s |%9s%s", mb(meas).c_str(), mb(ana).c_str(), ok ? " " : "!");
    }
    std::printf("\n");
    max_tp = std::max(max_tp, at(r, kMeasTp));
    max_dp = std::max(max_dp, at(r, kMeasDp));
    max_pp = std::max(max_pp, at(r, kMeasPp));
  }
  std::printf("measured %s analytical on every rank and communicator%s\n",
              bytes_match ? "==" : "!=", bytes_match ? "" : " (rows marked !)");

  const double theory = static_cast<double>(shape.pp - 1) / (M + shape.pp - 1);
  double wait_mean = 0, idle_mean = 0, bound_mean = 0;
  if (shape.pp > 1) {
    // Per-stage compute c_s = f_s + b_s (the tp=0, dp=0 rank of the stage) for the bound.
    std::vector<double> c(static_cast<size_t>(shape.pp));
    for (int r = 0; r < W; ++r)
      if (at(r, kTp) == 0 && at(r, kDp) == 0)
        c[static_cast<size_t>(at(r, kPp))] = at(r, kForward) + at(r, kBackward);
    double sum_c = 0, max_c = 0;
    for (double x : c) {
      sum_c += x;
      max_c = std::max(max_c, x);
    }
    const double makespan = sum_c + (M - 1) * max_c;
    std::printf(
        "\npipeline bubble per rank over %d runs of Pipeline::run (median run); theory "
        "(pp-1)/(M+pp-1) = %.3f\n",
        o.steps, theory);
    std::printf("%4s %3s %9s %9s %9s %9s %6s %6s %6s\n", "rank", "pp", "fwd ms", "bwd ms", "run s",
                "wait s", "wait", "idle", "bound");
    for (int r = 0; r < W; ++r) {
      const double run = at(r, kRun), cs = at(r, kForward) + at(r, kBackward);
      const double wait = at(r, kWait) / run, idle = 1.0 - M * cs / run;
      const double bound = 1.0 - M * c[static_cast<size_t>(at(r, kPp))] / makespan;
      std::printf("%4d %3d %9.1f %9.1f %9.3f %9.3f %6.3f %6.3f %6.3f\n", r,
                  static_cast<int>(at(r, kPp)), 1e3 * at(r, kForward), 1e3 * at(r, kBackward), run,
                  at(r, kWait), wait, idle, bound);
      wait_mean += wait / W;
      idle_mean += idle / W;
      bound_mean += bound / W;
    }
    std::printf(
        "(wait = receive time / run; idle = 1 - M (fwd + bwd) / run; bound = 1 - M c_s / "
        "(sum c + (M-1) max c) for the measured stage times c = fwd + bwd)\n");
  }
  std::printf(
      "\nsummary name=%s ranks=%d dp=%d tp=%d pp=%d zero=%d M=%d step_s=%.3f tokens_per_s=%.0f "
      "tp_MB=%s dp_MB=%s pp_MB=%s bytes_match=%s bubble_theory=%.3f bubble_bound=%.3f "
      "bubble_wait=%.3f "
      "bubble_idle=%.3f\n",
      o.name.empty() ? "-" : o.name.c_str(), W, shape.dp, shape.tp, shape.pp, o.zero, M, step,
      tokens_per_step / step, mb(max_tp).c_str(), mb(max_dp).c_str(), mb(max_pp).c_str(),
      bytes_match ? "yes" : "NO", theory, bound_mean, wait_mean, idle_mean);
  return bytes_match ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MpiRuntime mpi(&argc, &argv);
  try {
    const std::optional<Options> options = parse_options(argc, argv);
    return options ? run_bench(*options) : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_parallel: %s\n", e.what());
    // A rank that fails alone would leave the others blocked in a collective.
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}
