#include "train/gpu_binding.h"

#include <cstdlib>

#include "core/host_name.h"
#include "kernels/registry.h"

namespace shardlm {

namespace {

// The launcher's word for the node-local rank: mpirun's, else srun's (mpirun started inside an
// allocation passes the batch step's SLURM_LOCALID on to its ranks, so it comes second).
void check_launcher_word(const NodePlace& place) {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"})
    if (const char* value = std::getenv(var)) return check_launcher_local_rank(place, var, value);
}

}  // namespace

RankDevice bind_cuda_device(Communicator& world) {
  const int local_ranks = world.ranks_on_my_node();
  const NodePlace place{.host = host_name(),
                        .world_rank = world.rank(),
                        .local_rank = world.rank_on_my_node(),
                        .local_ranks = local_ranks};
  check_launcher_word(place);
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  const DeviceBinding binding =
      choose_device(place, cuda_device_count(), visible != nullptr ? visible : "");
  select_cuda_device(binding.device);
  return {place, binding};
}

}  // namespace shardlm
