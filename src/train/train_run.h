// `shardlm train` after option parsing: sets up MPI, the mesh, data, the trainer and
// checkpoints, and runs the loop with evaluation, metrics, heartbeats, graceful stop on
// SIGTERM/SIGUSR1 or a wall-clock budget, and resume.
#pragma once

#include "train/run_config.h"

namespace shardlm {

// Returns the process exit code: 0 finished, kExitSavedRequeue (75) when a checkpoint
// was saved because of a signal or --exit-after-minutes. Errors throw.
int run_training(RunConfig cfg);

}  // namespace shardlm
