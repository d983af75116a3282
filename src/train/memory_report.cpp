#include "train/memory_report.h"

#include <cstdint>

#include "plan/plan_report.h"

namespace shardlm {

std::vector<MemoryTotals> gather_peaks(Communicator& world, const MemoryAccount& account) {
  // Per rank: kMemoryRoles role peaks, then the total peak, as 64-bit integers.
  constexpr size_t kFields = kMemoryRoles + 1;
  const MemoryTotals peak = account.peak();
  int64_t mine[kFields];
  for (size_t r = 0; r < kMemoryRoles; ++r) mine[r] = static_cast<int64_t>(peak.by_role[r]);
  mine[kMemoryRoles] = static_cast<int64_t>(peak.total);
  std::vector<int64_t> all(kFields * static_cast<size_t>(world.size()));
  world.all_gather(mine, all.data(), kFields, DType::I64);
  std::vector<MemoryTotals> out(static_cast<size_t>(world.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t r = 0; r < kMemoryRoles; ++r)
      out[i].by_role[r] = static_cast<size_t>(all[i * kFields + r]);
    out[i].total = static_cast<size_t>(all[i * kFields + kMemoryRoles]);
  }
  return out;
}

std::string memory_start_line(const MemoryTotals& live, const MemoryTotals& planned_peak) {
  return "memory (rank 0): allocated " + format_bytes(static_cast<double>(live.total)) + " (" +
         role_breakdown(live) + "); planned peak " +
         format_bytes(static_cast<double>(planned_peak.total));
}

}  // namespace shardlm
