#include "kernels/memory_account.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace shardlm {

const char* memory_role_name(MemoryRole role) {
  switch (role) {
    case MemoryRole::Parameters:
      return "parameters";
    case MemoryRole::Gradients:
      return "gradients";
    case MemoryRole::Optimizer:
      return "optimizer";
    case MemoryRole::Activations:
      return "activations";
    case MemoryRole::Communication:
      return "communication";
    case MemoryRole::Workspace:
      return "workspace";
  }
  return "unknown";
}

void MemoryAccount::on_alloc(const void* p, size_t bytes, MemoryRole role) {
  const std::lock_guard<std::mutex> lock(mu_);
  SHARDLM_CHECK(blocks_.emplace(p, Block{bytes, role}).second,
                "memory account: a pointer was allocated twice without a free");
  const auto r = static_cast<size_t>(role);
  live_.by_role[r] += bytes;
  live_.total += bytes;
  peak_.by_role[r] = std::max(peak_.by_role[r], live_.by_role[r]);
  peak_.total = std::max(peak_.total, live_.total);
}

void MemoryAccount::on_free(const void* p) {
  if (p == nullptr) return;
  const std::lock_guard<std::mutex> lock(mu_);
  const auto it = blocks_.find(p);
  SHARDLM_CHECK(it != blocks_.end(), "memory account: freeing a pointer it never allocated");
  live_.by_role[static_cast<size_t>(it->second.role)] -= it->second.bytes;
  live_.total -= it->second.bytes;
  blocks_.erase(it);
}

MemoryTotals MemoryAccount::live() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

MemoryTotals MemoryAccount::peak() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

void MemoryAccount::reset_peak() {
  const std::lock_guard<std::mutex> lock(mu_);
  peak_ = live_;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

}  // namespace shardlm
