// The GPU of this rank for --device cuda: gathers the facts (this host's name, the ranks on
// this node and this rank's place among them from the communicator, the launcher's local rank,
// the CUDA device count) and applies kernels/device_binding.h's rule. `shardlm train` calls it
// before the CUDA backend is created; `shardlm train --print-device-binding` prints its result.
#pragma once

#include "kernels/device_binding.h"
#include "parallel/comm.h"

namespace shardlm {

struct RankDevice {
  NodePlace place;
  DeviceBinding binding;
};

// Collective over `world` (counts the ranks per node). Throws shardlm::Error when this host has
// more ranks than devices, or the launcher's local rank (OMPI_COMM_WORLD_LOCAL_RANK, else
// SLURM_LOCALID) disagrees with MPI's. Selects the device for the CUDA backend.
RankDevice bind_cuda_device(Communicator& world);

}  // namespace shardlm
