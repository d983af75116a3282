// How much host memory this process may still use: /proc/meminfo's MemAvailable, capped by
// the memory cgroup's limit minus its usage (v2 memory.max/current or v1
// memory.limit_in_bytes/usage_in_bytes, for this process's cgroup and every ancestor). The
// trainer's preflight (train/memory_preflight.h) shares it among a node's ranks.
//
// Tests point the sources elsewhere: SHARDLM_MEMINFO names a meminfo file, SHARDLM_CGROUP_DIR
// one cgroup directory to read instead of looking this process's up.
#pragma once

#include <cstdint>
#include <string>

namespace shardlm {

struct HostMemory {
  uint64_t mem_available = 0;  // bytes, MemAvailable
  bool cgroup_limited = false;
  uint64_t cgroup_free = 0;      // the tightest limit - usage over the cgroup and its ancestors
  std::string cgroup;            // the directory of that limit
  uint64_t usable() const;       // min of the two
  std::string describe() const;  // "MemAvailable 21.1 GiB, cgroup .../x: 3.0 GiB free"
};

HostMemory read_host_memory();

}  // namespace shardlm
