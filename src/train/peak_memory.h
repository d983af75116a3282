// The memory a run reports (metrics.jsonl's peak_mem_bytes, TensorBoard's
// train/peak_mem_bytes, the end-of-run summary).
#pragma once

#include <cstdint>

#include "parallel/comm.h"

namespace shardlm {

// This process's peak memory in bytes so far. Today the peak resident set size
// (getrusage's ru_maxrss): weights, gradients, optimizer state, activations, MPI buffers and
// the program itself. THE PLUG-IN POINT for allocator accounting by role: when the backends
// count their allocations (params / grads / optimizer / activations), return that peak here
// (and add the roles as further metrics next to peak_mem_bytes in train/metrics_log.h).
uint64_t process_peak_memory_bytes();

// The largest process_peak_memory_bytes() over the ranks of `world` (collective).
uint64_t peak_memory_bytes_over_ranks(Communicator& world);

}  // namespace shardlm
