#include "kernels/device_binding.h"

#include "core/error.h"
#include "core/parse.h"

namespace shardlm {

namespace {
std::string visible_note(const std::string& visible_devices) {
  return visible_devices.empty() ? "" : " (CUDA_VISIBLE_DEVICES=" + visible_devices + ")";
}
}  // namespace

DeviceBinding choose_device(const NodePlace& place, int device_count,
                            const std::string& visible_devices) {
  if (device_count == 0)
    fail("--device cuda: host " + place.host + " sees no CUDA device" +
         visible_note(visible_devices) + ": run on a node with a GPU, or use --device cpu");
  if (place.local_ranks > device_count)
    fail("host " + place.host + " runs " + std::to_string(place.local_ranks) +
         " rank(s) but sees " + std::to_string(device_count) + " CUDA device(s)" +
         visible_note(visible_devices) +
         ": each rank of a node needs a GPU of its own; start at most " +
         std::to_string(device_count) +
         " rank(s) per node (--ntasks-per-node, mpirun --map-by ppr:N:node) or give the job more "
         "GPUs (--gpus-per-node)");
  return {.device = place.local_rank, .device_count = device_count};
}

void check_launcher_local_rank(const NodePlace& place, const char* launcher_var,
                               const char* launcher_value) {
  if (launcher_value == nullptr) return;
  const int launcher_rank = parse_int(launcher_var, launcher_value);
  if (launcher_rank != place.local_rank)
    fail("rank " + std::to_string(place.world_rank) + " on host " + place.host +
         ": the launcher's node-local rank " + launcher_var + "=" + launcher_value +
         " differs from MPI's (" + std::to_string(place.local_rank) + " of " +
         std::to_string(place.local_ranks) +
         " ranks sharing this node's memory): the GPU binding would not be one device per rank");
}

std::string describe_device_binding(const NodePlace& place, const DeviceBinding& binding) {
  return "rank " + std::to_string(place.world_rank) + " on host " + place.host + ": local rank " +
         std::to_string(place.local_rank) + " of " + std::to_string(place.local_ranks) +
         ", device " + std::to_string(binding.device) + " of " +
         std::to_string(binding.device_count);
}

}  // namespace shardlm
