#include "train/train_run.h"

#include <cstdlib>
#include <iostream>
#include <optional>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/trace.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/threads.h"
#include "kernels/cpu/wait_policy.h"
#include "kernels/registry.h"
#include "model/family.h"
#include "parallel/consistency.h"
#include "parallel/mesh.h"
#include "parallel/mpi_comm.h"
#include "parallel/mpi_runtime.h"
#include "plan/memory_model.h"
#include "train/gpu_binding.h"
#include "train/memory_preflight.h"
#include "train/memory_report.h"
#include "train/metrics_log.h"
#include "train/peak_memory.h"
#include "train/progress_printer.h"
#include "train/resolve_run_config.h"
#include "train/run_checkpoints.h"
#include "train/run_data.h"
#include "train/run_directory.h"
#include "train/run_summary.h"
#include "train/step_time_split.h"
#include "train/stop_request.h"
#include "train/throughput.h"
#include "train/trace_window.h"
#include "train/trainer.h"

namespace shardlm {

namespace {

// Whether mpirun or srun started this process (Open MPI, PMIx and PMI set one of these). A
// plain `shardlm train` is one process and does not initialise MPI at all, so it also runs
// where MPI's plugins are not installed (e.g. a GPU machine given only the binary).
bool launched_under_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

// Chooses and selects this rank's GPU and prints its binding line (every rank prints its own;
// collective: counts the ranks per node).
void print_binding(Communicator& world) {
  const RankDevice rd = bind_cuda_device(world);
  std::cout << describe_device_binding(rd.place, rd.binding) << std::endl;
}

// The kernel backend for --device. With cuda, first every rank's GPU (its node-local rank;
// refused when a node has more ranks than devices). The CUDA backend runs one rank on one GPU
// for now: the communicators pass host pointers (MPI without CUDA awareness), so several ranks
// or ZeRO-1's host-side all-gather would hand them device memory.
KernelBackend& select_backend(const RunConfig& cfg, Mesh& mesh) {
  if (cfg.device == "cuda") print_binding(mesh.world());
  KernelBackend& backend = resolve_backend(cfg.device);
  if (!backend.host_memory() && (mesh.world_size() != 1 || cfg.zero != 0))
    fail("--device " + cfg.device + " runs one rank on one GPU without ZeRO for now (got " +
         std::to_string(mesh.world_size()) + " ranks, zero " + std::to_string(cfg.zero) +
         "): start a single process (no mpirun/srun -n > 1) with --zero 0, or use --device cpu "
         "for several ranks; multi-GPU needs the NCCL communicator");
  return backend;
}

// Sets this rank's OpenMP threads (collective: counts the ranks per node) before anything sizes
// per-thread buffers, and describes the CPU set-up for the header.
std::string set_up_threads(const RunConfig& cfg, Mesh& mesh) {
  const int ranks_on_node = mesh.world().ranks_on_my_node();
  const cpu::CpuThreads t = cpu::choose_cpu_threads(cfg.threads, std::getenv("OMP_NUM_THREADS"),
                                                    cpu::usable_cpu_count(), ranks_on_node);
  cpu::set_cpu_threads(t.threads);
  return cfg.device + ", CPU kernels ISA " + cpu::cpu_isa_name(cpu::running_cpu_isa()) +
         " (GEMMs: oneDNN " + cpu::gemm_isa_name() + "), " + std::to_string(t.threads) +
         " OpenMP thread(s) per rank (" + t.reason + "), wait policy " +
         cpu::describe_wait_policy();
}

// The pieces the loop drives, set up by run_training.
struct Run {
  const RunConfig& cfg;
  Mesh& mesh;
  Trainer& trainer;
  const RunData& data;
  const RunDirectory& dir;
  RunCheckpoints& checkpoints;
  MetricsLog& metrics;
  const ProgressPrinter& out;
  StopRequest& stop;
  StepTimeSplit split;
  TraceWindow& trace;
  RunSummary summary;
  KernelBackend& backend;
};

// Validation on --eval-steps global batches (collective), logged and printed.
void evaluate(Run& run, int step) {
  const trace::Span span("evaluate", trace::Kind::Step, 0, -1, "step");
  const double loss = run.trainer.evaluate(0, run.cfg.eval_steps, run.data.val());
  const std::optional<double> bpb = run.data.bits_per_byte(loss);
  run.metrics.eval(step, loss, bpb);
  run.summary.eval(step, loss, bpb);
  run.out.eval(step, loss, bpb);
}

// A checkpoint, and the metrics made durable with it (collective). With --async-save it is
// committed later, by a poll at a step boundary or by save_last.
void save(Run& run, const TrainingPosition& pos) {
  run.checkpoints.save(pos);
  run.metrics.sync();
}

// The checkpoint this start ends with, committed before it exits, after any save in flight.
void save_last(Run& run, const TrainingPosition& pos) {
  save(run, pos);
  run.checkpoints.wait();
}

// The summary that ends this start.
void print_summary(Run& run, const TrainingPosition& pos, double seconds) {
  run.trace.finish();
  if (run.mesh.world_rank() == 0)
    run.out.summary(run.summary.text(pos.step, pos.samples_consumed * run.cfg.seq_len, seconds,
                                     find_latest_checkpoint(run.dir.checkpoints())));
}

// The logged step's metrics (collective: the split and the peak memory come from every rank).
StepMetrics step_metrics(Run& run, const TrainingPosition& pos, const StepResult& r,
                         const Throughput::Window& w, double elapsed_s) {
  const StepTimeSplit::Split split = run.split.take(run.mesh.world());
  return StepMetrics{.step = pos.step,
                     .loss = r.loss,
                     .lr = r.lr,
                     .grad_norm = r.grad_norm,
                     .tokens = pos.samples_consumed * run.cfg.seq_len,
                     .tokens_per_s = w.tokens_per_s,
                     .mfu = w.mfu,
                     .elapsed_s = elapsed_s,
                     .compute_s = split.compute_s,
                     .comm_s = split.comm_s,
                     .bubble_s = split.bubble_s,
                     .peak_mem_bytes = peak_memory_bytes_over_ranks(run.mesh.world()),
                     .skipped = r.skipped,
                     .peak_alloc = gather_peaks(run.mesh.world(), run.backend.memory()),
                     .cpu_s = split.cpu_s};
}

// Trains from `pos` to --steps, or until a stop request; returns the exit code.
int train_loop(Run& run, TrainingPosition pos) {
  const RunConfig& cfg = run.cfg;
  Throughput speed(static_cast<double>(run.trainer.samples_per_step()) * cfg.seq_len,
                   model_family(cfg.model.family).flops_per_token(cfg.model, cfg.seq_len),
                   peak_flops_per_rank(cfg.peak_tflops, run.mesh.world()) * run.mesh.world_size());
  run.stop.set_time_budget(cfg.exit_after_minutes);
  // The first heartbeat says "this rank takes stop signals now" (the handlers are in place since
  // before MPI start-up): a job script holds a stop that came earlier until every rank wrote one.
  run.dir.heartbeat(pos.step);
  if (pos.step == 0 || cfg.eval_every > 0) evaluate(run, pos.step);
  speed.restart_window();  // tokens/s counts training steps only
  while (pos.step < cfg.steps) {
    run.trace.before_step(pos.step + 1);
    run.split.begin_step();
    const StepResult r = run.trainer.train_step(pos.step, pos.samples_consumed, run.data.train(),
                                                cfg.skip_non_finite);
    run.split.end_step();
    pos.samples_consumed += run.trainer.samples_per_step();
    ++pos.step;
    run.dir.heartbeat(pos.step);
    run.checkpoints.poll();  // --async-save: commits a save once every rank has written its file
    speed.step_done();
    if (pos.step % cfg.log_every == 0 || pos.step == cfg.steps || r.skipped) {
      const Throughput::Window w = speed.take();
      const StepMetrics m = step_metrics(run, pos, r, w, speed.elapsed_s());
      run.metrics.step(m);
      run.summary.step(m);
      run.out.step(m, cfg.steps, r.clipped, w.seconds_per_step * (cfg.steps - pos.step));
    }
    const bool last = pos.step == cfg.steps;
    if (cfg.eval_every > 0 && pos.step % cfg.eval_every == 0 && !last) evaluate(run, pos.step);
    if (cfg.save_every > 0 && pos.step % cfg.save_every == 0 && !last) save(run, pos);
    // Every step, on every rank, so that all ranks stop after the same one.
    if (const int reason = run.stop.agree(run.mesh.world()); reason != 0 && !last) {
      run.out.stopping(StopRequest::describe(reason), pos.step, kExitSavedRequeue);
      save_last(run, pos);
      print_summary(run, pos, speed.elapsed_s());
      return kExitSavedRequeue;
    }
    if (!last) run.trace.after_step(pos.step);  // the last step's window takes the final save
  }
  evaluate(run, pos.step);
  save_last(run, pos);
  run.out.done(pos.step, speed.elapsed_s());
  print_summary(run, pos, speed.elapsed_s());
  return kExitOk;
}

// The settings resolved for `world_size` ranks, with the tokenizer of --data that they need.
struct Inputs {
  std::optional<Tokenizer> tokenizer;  // none for synthetic data
  ResolvedRun resolved;
};

Inputs resolve_inputs(const RunFlags& flags, int world_size) {
  Inputs in;
  const std::string data = data_setting(flags);
  in.tokenizer = open_run_tokenizer(data);
  const Tokenizer* tok = in.tokenizer ? &*in.tokenizer : nullptr;
  in.resolved = resolve_run_config(flags, run_facts(world_size, data, tok));
  return in;
}

}  // namespace

std::string effective_config_text(const RunFlags& flags, int world_size) {
  return resolve_inputs(flags, world_size).resolved.config.to_ini();
}

int print_device_binding() {
  std::optional<MpiRuntime> mpi;
  if (launched_under_mpi()) mpi.emplace();
  const std::unique_ptr<Communicator> world = world_communicator();
  set_error_rank(world->rank());
  print_binding(*world);
  return kExitOk;
}

int run_training(const RunFlags& flags) {
  StopRequest stop;  // before MPI start-up (see stop_request.h)
  std::optional<MpiRuntime> mpi;
  if (launched_under_mpi()) mpi.emplace();
  const Inputs in = resolve_inputs(flags, mpi ? mpi->world_size() : 1);
  const Tokenizer* tok = in.tokenizer ? &*in.tokenizer : nullptr;
  const RunConfig& cfg = in.resolved.config;

  Mesh mesh(cfg.tp, cfg.pp);
  const std::string config_text = cfg.to_ini();
  // Every rank must run the same configuration: compare before anything collective depends on it.
  check_same_on_all_ranks(mesh.world(), "effective config", config_text);
  const bool leader = mesh.world_rank() == 0;
  const ProgressPrinter out(leader);
  const RunData data(cfg, tok);
  const RunDirectory dir(cfg.out, config_text, cfg.model, mesh.world());
  out.header(in.resolved, config_text);
  out.backend(set_up_threads(cfg, mesh));

  KernelBackend& backend = select_backend(cfg, mesh);
  check_memory_fits(cfg, in.resolved.train, mesh, backend);
  Trainer trainer(in.resolved.train, mesh, backend);
  if (leader)
    std::cout << memory_start_line(
                     backend.memory().live(),
                     predict_rank_memory(cfg.model, train_layout(in.resolved.train, mesh.sizes()),
                                         cfg.seq_len, 0, 0)
                         .peak)
              << std::endl;
  RunCheckpoints checkpoints(trainer, dir.checkpoints(), config_text, tok, cfg.keep_last,
                             cfg.keep_every, cfg.async_save, out);
  const TrainingPosition start = checkpoints.resume(cfg.resume);
  if (!checkpoints.resumed() && !cfg.init_from.empty()) checkpoints.init_from(cfg.init_from);
  MetricsLog metrics(leader ? cfg.metrics : "",
                     cfg.tensorboard ? std::filesystem::path(cfg.out) / "tensorboard" : "");
  TraceWindow trace(cfg.trace_first, cfg.trace_last, std::filesystem::path(cfg.out) / "trace",
                    mesh);
  Run run{cfg, mesh, trainer, data, dir, checkpoints, metrics, out, stop, {}, trace, {}, backend};
  return train_loop(run, start);
}

}  // namespace shardlm
