// `shardlm plan`: every layout of a model over nodes x ranks-per-node (tp within a node, pp
// over the family's stage split, dp the rest; ZeRO 0-3, recompute none/selective/full, every
// micro-batch size dividing the per-replica batch), each with its predicted per-rank memory
// and step time; those that cannot run are kept with the reason, the rest ranked fastest
// first, and the command line that runs a layout.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"
#include "plan/device.h"
#include "plan/layout.h"
#include "plan/memory_model.h"
#include "plan/step_time.h"

namespace shardlm {

struct PlanRequest {
  ModelConfig model;
  std::string model_arg;  // as given to --model (a preset name or a config file)
  // A file of train settings: the command runs it as `--config FILE` (else `--model ARG`: a
  // preset, or a file holding only a [model] section).
  bool model_is_config = false;
  int seq_len = 0;
  int global_batch = 0;  // sequences per step
  int nodes = 1, gpus_per_node = 1;
  DeviceSpec device;
  double mem_per_device = 0;  // bytes each rank may use (the device's, or its node's share)
};

struct Candidate {
  Layout layout;
  RankMemory memory;  // the rank with the highest predicted peak
  StepTime time;
  double need_bytes = 0;  // memory.peak.total with the preflight margin (memory_margin.h)
  std::string dropped;    // why it cannot run ("" when it fits and runs)
  std::string not_yet;    // fits, but this build cannot run it yet (plan/layout.h)
};

struct Plan {
  std::vector<Candidate> ranked;   // fits and runs, fastest first
  std::vector<Candidate> pending;  // fits but not runnable in this build, fastest first
  std::vector<Candidate> dropped;  // does not fit or is invalid
};

Plan make_plan(const PlanRequest& req);
// Every valid layout of the request's shape (validity only; no memory filter).
std::vector<Layout> enumerate_layouts(const PlanRequest& req);

// `mpirun -n W shardlm train --model ... --tp .. --pp .. ...` for a layout.
std::string train_command(const PlanRequest& req, const Layout& layout);

}  // namespace shardlm
