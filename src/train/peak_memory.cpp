#include "train/peak_memory.h"

#include <sys/resource.h>

namespace shardlm {

uint64_t process_peak_memory_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

uint64_t peak_memory_bytes_over_ranks(Communicator& world) {
  double peak = static_cast<double>(process_peak_memory_bytes());  // exact below 2^53 bytes
  world.all_reduce(&peak, 1, DType::F64, ReduceOp::Max);
  return static_cast<uint64_t>(peak);
}

}  // namespace shardlm
