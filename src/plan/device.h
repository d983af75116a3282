// What the planner assumes of a device (`shardlm plan --device`): memory, peak rate, memory
// bandwidth and the links between ranks. GPU figures are the vendors' dense bf16 tensor-core
// peaks and link rates (docs/planner.md lists them and their sources); cpu is this machine.
#pragma once

#include <string>
#include <vector>

namespace shardlm {

struct DeviceSpec {
  std::string name;     // "h100", "cpu", ...
  double memory_bytes;  // per device (cpu: per node, shared by its ranks)
  double peak_flops;    // per device (cpu: per node)
  double mem_bw;        // bytes/s per device (cpu: per node): AdamW's streaming update
  double intra_bw;      // bytes/s one rank sends to a peer on the same node
  double inter_bw;      // bytes/s one rank sends to a peer on another node
  double efficiency;    // fraction of peak_flops the model's kernels reach
  bool shared_by_node;  // cpu: memory, flops and bandwidth divide among a node's ranks
};

// Throws naming the known devices.
DeviceSpec device_spec(const std::string& name);
std::vector<std::string> device_names();

}  // namespace shardlm
