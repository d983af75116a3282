// Which GPU a rank uses: the one numbered by its node-local rank (rank k of a node's n ranks
// takes device k of the devices it sees), so the ranks of a node never share one. Portable (no
// CUDA headers): the facts come from the caller (train/gpu_binding.h gathers them: the
// communicator's ranks on this node, the launcher's local rank, the CUDA device count), so the
// rule is tested on any build.
#pragma once

#include <string>

namespace shardlm {

// Where a rank runs: its host and its place among the ranks of that host.
struct NodePlace {
  std::string host;
  int world_rank = 0;
  int local_rank = 0;   // 0 .. local_ranks-1, ordered by world rank
  int local_ranks = 1;  // ranks on this host
};

struct DeviceBinding {
  int device = 0;        // the CUDA device index this rank uses
  int device_count = 0;  // the devices this process sees
};

// device = local rank. Throws shardlm::Error naming the host, its rank count and the visible
// device count when the host has more ranks than devices (`visible_devices`: the value of
// CUDA_VISIBLE_DEVICES, named in the error, or "" when unset).
DeviceBinding choose_device(const NodePlace& place, int device_count,
                            const std::string& visible_devices);

// Throws when the launcher's word for the node-local rank (`launcher_var` = `launcher_value`,
// e.g. SLURM_LOCALID=1) disagrees with the communicator's: the two would pick different
// devices. Does nothing for a null value (the launcher did not set it).
void check_launcher_local_rank(const NodePlace& place, const char* launcher_var,
                               const char* launcher_value);

// "rank 3 on host B: local rank 1 of 2, device 1 of 2"
std::string describe_device_binding(const NodePlace& place, const DeviceBinding& binding);

}  // namespace shardlm
