// The allocator's accounting (kernels/memory_account.h) as a run reports it: one start-up
// line (rank 0's live bytes by role next to the plan's prediction) and every rank's peak,
// gathered for metrics.jsonl ("peak_alloc_bytes", "peak_alloc_bytes_by_role").
#pragma once

#include <string>
#include <vector>

#include "kernels/memory_account.h"
#include "parallel/comm.h"

namespace shardlm {

// Collective over `world`: every rank's peak, in world-rank order (on every rank).
std::vector<MemoryTotals> gather_peaks(Communicator& world, const MemoryAccount& account);

// "allocated 1.23 GiB (parameters ..., ...); planned peak 1.30 GiB"
std::string memory_start_line(const MemoryTotals& live, const MemoryTotals& planned_peak);

}  // namespace shardlm
