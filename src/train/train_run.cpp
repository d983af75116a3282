#include "train/train_run.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/fs.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "kernels/registry.h"
#include "model/family.h"
#include "model/init.h"
#include "parallel/consistency.h"
#include "parallel/mesh.h"
#include "train/checkpointing.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace shardlm {

namespace {

// Set by SIGTERM / SIGUSR1 (SLURM's preemption and pre-timeout signals); read at step ends.
volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int sig) {
  g_stop_signal = sig;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_duration(double s) {
  const long t = std::lround(std::max(0.0, s));
  std::ostringstream os;
  if (t >= 3600) os << t / 3600 << "h";
  if (t >= 60) os << (t % 3600) / 60 << "m";
  os << t % 60 << "s";
  return os.str();
}

// fp32 FMA peak of one core of the reference machine (bench_peak_fma, docs/performance.md).
constexpr double kCpuCorePeakFlops = 0.27e12;

// The CPU cores of this node divided among the ranks running on it.
double cpu_peak_flops_per_rank(Communicator& world) {
  return kCpuCorePeakFlops * std::max(1u, std::thread::hardware_concurrency()) /
         world.ranks_on_my_node();
}

// Whether mpirun or srun started this process (Open MPI, PMIx and PMI set one of these). A
// plain `shardlm train` is one process and does not initialise MPI at all, so it also runs
// where MPI's plugins are not installed (e.g. a GPU machine given only the binary).
bool launched_under_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

// The kernel backend for --device. The CUDA backend runs one rank on one GPU for now: the
// communicators pass host pointers (MPI without CUDA awareness), so several ranks or ZeRO-1's
// host-side all-gather would hand them device memory.
KernelBackend& select_backend(const RunConfig& cfg, const Mesh& mesh) {
  KernelBackend& backend = resolve_backend(cfg.device);
  if (!backend.host_memory() && (mesh.world_size() != 1 || cfg.zero != 0))
    fail("--device " + cfg.device + " runs one rank on one GPU without ZeRO for now (got " +
         std::to_string(mesh.world_size()) + " ranks, zero " + std::to_string(cfg.zero) +
         "): start a single process (no mpirun/srun -n > 1) with --zero 0, or use --device cpu "
         "for several ranks; multi-GPU needs the NCCL communicator");
  return backend;
}

// A JSON number, or null for NaN/inf (which JSON cannot represent).
std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  std::ostringstream os;
  os << std::setprecision(6) << x;
  return os.str();
}

}  // namespace

int run_training(RunConfig cfg) {
  // Before MPI start-up: SLURM's warning signal may arrive any time, and SIGUSR1's default
  // action would kill the rank instead of saving.
  install_signal_handlers();
  std::optional<MpiRuntime> mpi;
  if (launched_under_mpi()) mpi.emplace();
  Mesh mesh(cfg.tp, cfg.pp);
  const bool leader = mesh.world_rank() == 0;
  if (cfg.out.empty()) fail("--out (the run directory) is required");
  const fs::path run_dir = cfg.out, ckpt_root = run_dir / "checkpoints";

  // ---- data and tokenizer ---------------------------------------------------------------
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<TokenDataset> train_data, val_data;
  const bool synthetic = cfg.data == "synthetic";
  if (!synthetic) {
    const fs::path tok_path = fs::path(cfg.data) / "tokenizer.model";
    if (!fs::exists(tok_path))
      fail("--data " + cfg.data + ": no tokenizer.model (prepare it with `shardlm data prepare`)");
    tokenizer.emplace(Tokenizer::from_file(tok_path.string()));
    if (cfg.model.vocab_size == 0) cfg.model.vocab_size = tokenizer->vocab_size();
    if (cfg.model.vocab_size < tokenizer->vocab_size())
      fail("model vocab_size " + std::to_string(cfg.model.vocab_size) +
           " is smaller than the tokenizer's " + std::to_string(tokenizer->vocab_size()) + " (" +
           tok_path.string() + ")");
    const ShardExpectations expect{tokenizer->fingerprint(),
                                   static_cast<uint64_t>(cfg.model.vocab_size)};
    train_data = std::make_unique<TokenDataset>(cfg.data, "train", expect);
    val_data = std::make_unique<TokenDataset>(cfg.data, "val", expect);
  } else if (cfg.model.vocab_size == 0) {
    fail("--data synthetic needs a vocabulary size (a --model preset or --vocab-size)");
  }
  if (cfg.seq_len == 0) cfg.seq_len = cfg.model.max_seq_len;
  cfg.optim.total_steps = cfg.steps;

  const int dp = mesh.sizes().dp;
  if (cfg.global_batch == 0) cfg.global_batch = static_cast<int64_t>(cfg.micro_batch) * dp;
  const int64_t per_round = static_cast<int64_t>(cfg.micro_batch) * dp;
  if (cfg.global_batch % per_round != 0)
    fail("--global-batch " + std::to_string(cfg.global_batch) +
         " sequences is not a multiple of micro-batch x dp = " + std::to_string(cfg.micro_batch) +
         " x " + std::to_string(dp) + " = " + std::to_string(per_round));

  TrainSettings st;
  st.model = cfg.model;
  st.micro_batch = cfg.micro_batch;
  st.seq_len = cfg.seq_len;
  st.micro_batches = static_cast<int>(cfg.global_batch / per_round);
  st.optim = cfg.optim;
  st.seed = cfg.seed;
  st.zero_stage = cfg.zero;
  st.pipeline_layers = cfg.pp_layers;
  validate_layout(st, mesh.sizes());

  // Every rank must run the same configuration: compare before anything collective depends on it.
  const std::string ini = cfg.to_ini();
  check_same_on_all_ranks(mesh.world(), "effective config", ini);

  // ---- run directory, resume ---------------------------------------------------------------
  std::optional<fs::path> resume_from;
  if (cfg.resume == "auto") {
    resume_from = find_latest_checkpoint(ckpt_root);
  } else if (cfg.resume != "none") {
    try {
      resume_from = resolve_checkpoint(cfg.resume);
    } catch (const Error& e) {
      throw Error("--resume: " + std::string(e.what()));
    }
  }
  const fs::path run_ini = run_dir / "run_config.ini";
  if (fs::exists(run_ini)) {
    const std::string diff =
        model_config_diff(model_config_from_ini(read_file(run_ini)), cfg.model);
    if (!diff.empty())
      fail("run directory " + run_dir.string() + " holds a run with a different model (" + diff +
           "); use a new --out or the original model settings");
  }
  mesh.world().barrier();
  if (leader) {
    fs::create_directories(ckpt_root);
    fs::create_directories(run_dir / "progress");
    if (!fs::exists(run_ini)) write_file_atomic(run_ini, ini);
    std::cout << "shardlm train: " << mesh.world_size() << " ranks (dp " << dp << " x tp " << cfg.tp
              << " x pp " << cfg.pp << (cfg.zero ? ", ZeRO-1" : "") << "), "
              << cfg.model.num_parameters() / 1e6 << "M parameters, " << st.micro_batches
              << " micro-batch(es) of " << cfg.micro_batch << " x " << cfg.seq_len
              << " per DP rank per step\n--- effective config ---\n"
              << ini << "------------------------\n"
              << std::flush;
  }
  mesh.world().barrier();

  Trainer trainer(st, mesh, select_backend(cfg, mesh));
  int start_step = 0;
  uint64_t samples_consumed = 0;
  if (resume_from) {
    CheckpointReader reader(*resume_from);
    const std::string diff =
        model_config_diff(model_config_from_ini(reader.config_text()), cfg.model);
    if (!diff.empty())
      fail("checkpoint " + resume_from->string() + " was saved with a different model (" + diff +
           "); refusing to resume");
    load_training_checkpoint(trainer, reader);
    start_step = static_cast<int>(reader.metadata_int("step"));
    samples_consumed = static_cast<uint64_t>(reader.metadata_int("samples_consumed"));
    if (leader)
      std::cout << "resumed from " << resume_from->string() << " at step " << start_step
                << " (saved with tp " << reader.metadata_int("layout.tp") << ", pp "
                << reader.metadata_int("layout.pp") << ", dp " << reader.metadata_int("layout.dp")
                << ", zero " << reader.metadata_int("layout.zero") << ")\n";
  }

  // ---- batch sources ---------------------------------------------------------------------------
  std::unique_ptr<SampleLoader> train_loader, val_loader;
  BatchSource train_source, val_source;
  if (synthetic) {
    const int V = cfg.model.vocab_size, T = cfg.seq_len;
    const uint64_t seed = cfg.seed;
    train_source = [=](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
      synthetic_samples(seed, V, T, first, count, tok, tgt);
    };
    val_source = [=](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
      synthetic_samples(~seed, V, T, first, count, tok, tgt);
    };
  } else {
    train_loader = std::make_unique<SampleLoader>(*train_data, cfg.seq_len, cfg.seed);
    val_loader = std::make_unique<SampleLoader>(*val_data, cfg.seq_len, cfg.seed);
    train_source = [&](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
      train_loader->get_samples(first, count, tok, tgt);
    };
    val_source = [&](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
      val_loader->get_samples(first, count, tok, tgt);
    };
  }
  // Validation bits per byte: nats per token / ln 2 x tokens per UTF-8 byte of the val text.
  const double val_tokens_per_byte =
      val_data && val_data->text_bytes() > 0
          ? static_cast<double>(val_data->token_count()) / val_data->text_bytes()
          : 0.0;

  // ---- metrics
  // -----------------------------------------------------------------------------------
  std::ofstream metrics;
  if (leader) {
    const fs::path mpath = cfg.metrics.empty() ? run_dir / "metrics.jsonl" : fs::path(cfg.metrics);
    metrics.open(mpath, std::ios::app);
    if (!metrics) fail("cannot open metrics file " + mpath.string());
  }
  auto evaluate = [&](int step) {
    const double loss = trainer.evaluate(0, cfg.eval_steps, val_source);
    if (!leader) return;
    std::ostringstream line;
    line << "{\"step\":" << step << ",\"val_loss\":" << json_number(loss);
    if (val_tokens_per_byte > 0)
      line << ",\"val_bpb\":" << json_number(loss / std::log(2.0) * val_tokens_per_byte);
    line << "}";
    metrics << line.str() << "\n" << std::flush;
    std::cout << "eval step " << step << " | val loss " << std::fixed << std::setprecision(4)
              << loss;
    if (val_tokens_per_byte > 0)
      std::cout << " | val bpb " << loss / std::log(2.0) * val_tokens_per_byte;
    std::cout << std::defaultfloat << "\n" << std::flush;
  };

  // ---- checkpointing
  // -----------------------------------------------------------------------------
  std::vector<uint8_t> tokenizer_bytes;
  if (tokenizer)
    tokenizer_bytes.assign(tokenizer->serialized().begin(), tokenizer->serialized().end());
  int last_saved = resume_from ? start_step : -1;
  auto save = [&](int steps_done) {
    if (steps_done == last_saved) return;
    const double t0 = now_seconds();
    TrainingCheckpointInfo info{steps_done, samples_consumed, ini, tokenizer_bytes};
    const fs::path dir = save_training_checkpoint(trainer, ckpt_root, info);
    if (leader) {
      apply_retention(ckpt_root, cfg.keep_last, cfg.keep_every);
      std::cout << "saved " << dir.string() << " (" << std::fixed << std::setprecision(2)
                << now_seconds() - t0 << " s)" << std::defaultfloat << "\n"
                << std::flush;
    }
    last_saved = steps_done;
  };

  // ---- the loop
  // ------------------------------------------------------------------------------------
  const fs::path heartbeat =
      run_dir / "progress" / ("rank_" + std::to_string(mesh.world_rank()) + ".txt");
  const double tokens_per_step = static_cast<double>(trainer.samples_per_step()) * cfg.seq_len;
  const double flops_tok = model_family(cfg.model.family).flops_per_token(cfg.model, cfg.seq_len);
  const double peak_per_rank =
      cfg.peak_tflops > 0 ? cfg.peak_tflops * 1e12 : cpu_peak_flops_per_rank(mesh.world());
  const double t_start = now_seconds();
  if (start_step == 0 || cfg.eval_every > 0) evaluate(start_step);
  int step = start_step;
  int exit_code = kExitOk;
  double window_start = now_seconds();
  int window_steps = 0;
  while (step < cfg.steps) {
    const StepResult r =
        trainer.train_step(step, samples_consumed, train_source, cfg.skip_non_finite);
    samples_consumed += trainer.samples_per_step();
    ++step;
    ++window_steps;
    write_file_atomic(heartbeat, "step=" + std::to_string(step) +
                                     " time=" + std::to_string(std::time(nullptr)) + "\n");
    const double now = now_seconds();
    if (leader && (step % cfg.log_every == 0 || step == cfg.steps || r.skipped)) {
      const double dt = (now - window_start) / window_steps;
      const double tps = tokens_per_step / dt;
      const double mfu = tps * flops_tok / (peak_per_rank * mesh.world_size());
      const double eta = dt * (cfg.steps - step);
      std::ostringstream line;
      line << std::setprecision(6) << "{\"step\":" << step << ",\"loss\":" << json_number(r.loss)
           << ",\"lr\":" << r.lr << ",\"grad_norm\":" << json_number(r.grad_norm)
           << ",\"tokens\":" << static_cast<uint64_t>(samples_consumed) * cfg.seq_len
           << ",\"tokens_per_s\":" << tps << ",\"mfu\":" << mfu
           << ",\"elapsed_s\":" << now - t_start << (r.skipped ? ",\"skipped\":true" : "") << "}";
      metrics << line.str() << "\n" << std::flush;
      std::cout << "step " << step << "/" << cfg.steps << " | loss " << std::fixed
                << std::setprecision(4) << r.loss << " | lr " << std::scientific
                << std::setprecision(2) << r.lr << " | gnorm " << std::fixed << std::setprecision(3)
                << r.grad_norm << (r.clipped ? " (clipped)" : "") << " | " << std::setprecision(0)
                << tps << " tok/s | mfu " << std::setprecision(1) << 100 * mfu << "% | eta "
                << format_duration(eta) << (r.skipped ? " | SKIPPED (non-finite)" : "")
                << std::defaultfloat << "\n"
                << std::flush;
      window_start = now;
      window_steps = 0;
    }
    if (cfg.eval_every > 0 && step % cfg.eval_every == 0 && step < cfg.steps) evaluate(step);
    if (cfg.save_every > 0 && step % cfg.save_every == 0 && step < cfg.steps) save(step);
    // Stop request: a signal on any rank (its number), or the wall-clock budget (1; rank 0's
    // clock decides). MAX all-reduce so that every rank takes the same decision at the same step.
    int stop = static_cast<int>(g_stop_signal);
    if (leader && cfg.exit_after_minutes > 0 && now - t_start > cfg.exit_after_minutes * 60.0)
      stop = std::max(stop, 1);
    mesh.world().all_reduce(&stop, 1, DType::I32, ReduceOp::Max);
    if (stop && step < cfg.steps) {
      if (leader)
        std::cout << "stop requested ("
                  << (stop > 1 ? "signal " + std::to_string(stop) : std::string("time budget"))
                  << ") at step " << step << ": saving and exiting with " << kExitSavedRequeue
                  << "\n"
                  << std::flush;
      save(step);
      exit_code = kExitSavedRequeue;
      break;
    }
  }
  if (exit_code == kExitOk) {
    evaluate(step);
    save(step);
    if (leader)
      std::cout << "done: " << step << " steps in " << format_duration(now_seconds() - t_start)
                << "\n"
                << std::flush;
  }
  return exit_code;
}

}  // namespace shardlm
