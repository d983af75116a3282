// Everything `shardlm train` is told: model, data, batch, optimizer, parallel layout,
// checkpointing and logging. Parsed from flags and an optional config file by
// cli/cmd_train.cpp; written back as INI text (run_config.ini in the run directory and the
// config of every checkpoint), whose [model] section is what resuming checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "optim/adamw.h"

namespace shardlm {

struct RunConfig {
  ModelConfig model;
  std::string model_preset = "tiny";
  std::string device = "cpu";  // kernel backend: "cpu" or "cuda"
  std::string data =
      "synthetic";           // a prepared dataset directory, or "synthetic" (seeded random tokens)
  int seq_len = 0;           // 0: the model's max_seq_len
  int micro_batch = 4;       // sequences per micro-batch
  int64_t global_batch = 0;  // sequences per step over all DP ranks; 0: micro_batch * dp
  int steps = 100;
  OptimizerConfig optim;  // total_steps is set from steps
  uint64_t seed = 1337;
  int tp = 1, pp = 1, zero = 0;
  std::vector<int> pp_layers;  // empty: even split
  int eval_every = 0;          // 0: only at the start and the end
  int eval_steps = 4;          // eval batches (each one global batch)
  int log_every = 1;
  std::string out;      // run directory
  std::string metrics;  // JSON Lines; default <out>/metrics.jsonl
  int save_every = 0;   // 0: only at the end
  int keep_last = 3;
  int keep_every = 0;
  std::string resume = "auto";    // "auto", "none" or a checkpoint directory
  double exit_after_minutes = 0;  // 0: no wall-clock budget
  bool skip_non_finite = false;   // --on-nan skip
  double peak_tflops = 0;         // per rank, for MFU; 0: this node's CPU cores shared by its ranks
  std::string generate_prompt;    // print a sample at the end when non-empty
  int generate_tokens = 0;

  // INI text: [model], [data], [batch], [optimizer], [parallel], [checkpoint], [logging].
  std::string to_ini() const;
};

}  // namespace shardlm
