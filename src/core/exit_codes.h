// Process exit codes shared by the trainer, the CLI, the launcher and the SLURM templates
// (launch/shardlm-launch and slurm/*.sbatch test for 75).
#pragma once

namespace shardlm {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSavedRequeue = 75;  // EX_TEMPFAIL: checkpoint saved, please requeue/resume

}  // namespace shardlm
