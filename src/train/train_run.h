// `shardlm train` after option parsing: MPI and the mesh, the resolved config, the run
// directory, data, the trainer and its checkpoints, then the loop with evaluation, metrics,
// heartbeats and a graceful stop (SIGTERM/SIGUSR1 or a wall-clock budget).
#pragma once

#include <string>

#include "train/run_flags.h"

namespace shardlm {

// Returns the process exit code: kExitOk finished, kExitSavedRequeue (75) when a checkpoint
// was saved because of a signal or --exit-after-minutes. Errors throw (UsageError for settings
// that resolve_run_config refuses).
int run_training(const RunFlags& flags);

// The effective config (run_config.ini text) that `flags` give for a job of `world_size` ranks,
// without running anything: what `shardlm train --print-config` prints. Reads the dataset's
// tokenizer (--data) for the vocabulary, like a run.
std::string effective_config_text(const RunFlags& flags, int world_size);

// `shardlm train --print-device-binding`: MPI start-up (under mpirun/srun), then the GPU this
// rank's --device cuda run would use, as the run prints it ("rank 3 on host B: local rank 1 of 2,
// device 1 of 2"), from the same code. Errors throw (a node with more ranks than devices).
int print_device_binding();

}  // namespace shardlm
