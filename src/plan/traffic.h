// Bytes each rank sends per optimizer step, per communicator, from the model shape and the
// layout alone (docs/parallelism.md, "Bytes per step"): what MpiCommunicator::bytes_sent()
// counts, checked against it by bench_parallel, and the planner's communication volume.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "plan/layout.h"

namespace shardlm {

struct CommBytes {
  uint64_t tp = 0, dp = 0, pp = 0, world = 0;
};

// What a ring over p ranks sends of `bytes` moved in total: (p-1)/p of it.
uint64_t ring_bytes(uint64_t bytes, int p);

// One rank of pipeline stage `pp_rank`. ZeRO-2 sends what ZeRO-1 does (reduce-scatter plus
// parameter all-gather); ZeRO-3 all-gathers the parameters for every micro-batch's forward
// and backward instead of once after the update.
CommBytes step_bytes(const ModelConfig& cfg, const Layout& layout, int seq_len, int pp_rank);

}  // namespace shardlm
