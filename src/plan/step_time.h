// Predicted time of one optimizer step of a layout: each stage's compute from the model's
// FLOPs (ModelFamily::flops_per_token: the dense matmuls and the attention over the sequence,
// each at the device's efficiency for it) and, on a CPU, the element-wise kernels' traffic
// through the stage's activations (the family's footprint); the rank's share of its node
// (CPU: its threads, the cores its node's ranks share); the 1F1B schedule's (M + pp - 1)
// slots of the slowest stage, recomputation's extra forward, communication per communicator
// (plan/traffic.h bytes over the link the group spans; shardlm does not overlap it with
// compute) and AdamW's streaming update.
#pragma once

#include "model/config.h"
#include "plan/device.h"
#include "plan/layout.h"

namespace shardlm {

struct StepTime {
  double compute_s = 0;  // (M + pp - 1) x the slowest stage's micro-batch, recompute included
  double bubble_s = 0;   // the part of compute_s that is the pipeline's fill and drain
  double comm_s = 0;     // the busiest rank's tp + dp + pp + world traffic
  double optimizer_s = 0;
  // CPU ranks that oversubscribe their node's cores (more ranks than cores): every rank's busy
  // time (computation x the device's oversubscription_cost, its communication) over the
  // cores; 0 otherwise.
  double node_s = 0;
  double total_s = 0;       // max(compute_s + comm_s + optimizer_s, node_s)
  double tokens_per_s = 0;  // over all ranks
  double mfu = 0;           // model FLOPs (no recompute) / (total_s x world x peak)
};

// gpus_per_node: ranks per node (a group of consecutive ranks that fits in it uses intra_bw).
StepTime predict_step_time(const ModelConfig& cfg, const Layout& layout, int seq_len,
                           const DeviceSpec& device, int gpus_per_node);

}  // namespace shardlm
