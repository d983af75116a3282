// Issue 18: before the trainer allocates, every rank compares its planned peak memory
// (plan/memory_model.h, with plan/memory_margin.h's margin) with what it has free — the
// device's free memory (cudaMemGetInfo through KernelBackend::device_free_bytes), or for host
// memory MemAvailable capped by the cgroup limit (plan/host_memory.h) divided among the ranks
// of its node. The verdict is agreed over the world (one all-gather), so either every rank
// starts or every rank stops with the same error: the need by role, what is free, and a
// layout from the planner that fits, as a command line. --memory-check off skips it.
#pragma once

#include "kernels/backend.h"
#include "parallel/mesh.h"
#include "plan/layout.h"
#include "train/run_config.h"
#include "train/trainer.h"

namespace shardlm {

// The planner's view of a trainer's settings over a mesh.
Layout train_layout(const TrainSettings& st, const MeshShape& shape);

// Collective over mesh.world(); throws shardlm::Error on every rank when some rank's need
// exceeds its free memory.
void check_memory_fits(const RunConfig& cfg, const TrainSettings& st, Mesh& mesh,
                       KernelBackend& backend);

}  // namespace shardlm
