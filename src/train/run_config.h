// Everything a `shardlm train` runs with, resolved: every default filled in and every check
// passed (train/resolve_run_config.h makes it; nothing else should). to_ini() writes the
// recorded part as the effective config: run_config.ini in the run directory, the config text
// of every checkpoint, and what all ranks compare before training. It is valid --config input
// (train/run_flags.h): `shardlm train --config RUN/run_config.ini --out NEW` runs the same run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/recompute.h"
#include "optim/adamw.h"

namespace shardlm {

struct RunConfig {
  // model
  std::string model_preset;
  ModelConfig model;
  // data and batch
  std::string data;  // a prepared dataset directory, or "synthetic"
  int seq_len = 0;
  int micro_batch = 0;       // sequences per micro-batch per DP rank
  int64_t global_batch = 0;  // sequences per step over all DP ranks
  int steps = 0;
  uint64_t seed = 0;
  // optimizer (total_steps = steps)
  OptimizerConfig optim;
  bool skip_non_finite = false;  // --on-nan skip
  // parallelism
  int tp = 0, pp = 0, zero = 0;
  Recompute recompute = Recompute::None;
  std::vector<int> pp_layers;  // empty: even split
  std::string device;          // kernel backend name (kernels/registry.h)
  // run directory, checkpoints, logging
  int save_every = 0;  // 0: only at the end
  int keep_last = 0;
  int keep_every = 0;
  int eval_every = 0;  // 0: only at the start and the end
  int eval_steps = 0;  // validation batches (each one global batch)
  int log_every = 0;
  double peak_tflops = 0;  // per rank, for MFU; 0: this node's CPU cores shared by its ranks

  // This start only (not recorded).
  std::string out;                // run directory
  std::string metrics;            // JSON Lines file
  std::string resume;             // "auto", "none" or a checkpoint (root) directory
  std::string init_from;          // a checkpoint whose parameters start a fresh run; "" none
  double exit_after_minutes = 0;  // 0: no wall-clock budget
  bool tensorboard = true;        // event files in <out>/tensorboard/
  int trace_first = 0;            // --trace-steps A:B (1-based, inclusive); 0: no trace
  int trace_last = 0;
  bool memory_check = true;  // --memory-check on: refuse what will not fit
  bool async_save = false;   // --async-save: checkpoints written on a background thread
  int threads = 0;           // OpenMP threads per rank; 0: kernels/cpu/threads.h's default

  // The effective config: every recorded setting as `flag-name = value` under comment headings
  // (run_flag_specs() order), floats in their shortest exact form, then the [model] record in
  // model_config_to_ini's form (what resuming and `shardlm generate` read).
  std::string to_ini() const;
};

}  // namespace shardlm
