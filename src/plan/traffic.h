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

// One rank of pipeline stage `pp_rank`. ZeRO-2 reduce-scatters each layer's gradients after
// every micro-batch's backward of it (M times per step, the rest of the buffer once) and
// all-gathers the parameters once after the update; ZeRO-3 also all-gathers each layer for
// every micro-batch's forward and backward (2M times) instead of after the update.
CommBytes step_bytes(const ModelConfig& cfg, const Layout& layout, int seq_len, int pp_rank);

}  // namespace shardlm
