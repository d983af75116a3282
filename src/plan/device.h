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
  double efficiency;    // fraction of peak_flops the model's dense matmuls reach
  bool shared_by_node;  // cpu: memory, flops and bandwidth divide among a node's ranks
  // Fraction of peak_flops the attention over the sequence reaches (GPUs: `efficiency`).
  double attention_efficiency = 0;
  // Bytes/s per core at which the element-wise kernels (norms, nonlinearity, softmax, adds,
  // their backward) go through a micro-batch's saved activations; 0: folded into
  // `efficiency` (GPUs).
  double activation_bw = 0;
  int cores = 0;              // cpu: the node's cores, shared by its ranks' threads
  double thread_scaling = 0;  // cpu: the share of a core each thread past a rank's first adds
  // cpu: how much dearer a rank's computation is when ranks oversubscribe the cores (context
  // switches, cold caches)
  double oversubscription_cost = 1;
  // Where the efficiencies come from (the plan prints it): data sheets, the reference CPU's
  // figures, or a probe on this machine (plan/cpu_calibration.h).
  std::string rates_source;
};

// Throws naming the known devices.
DeviceSpec device_spec(const std::string& name);
std::vector<std::string> device_names();

}  // namespace shardlm
