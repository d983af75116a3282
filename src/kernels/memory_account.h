// Live and peak bytes of one backend's allocations, by what the memory is for. Every
// KernelBackend::alloc names a role; the planner (plan/memory_model.h) predicts the same
// totals, and the trainer prints them at start and logs each rank's peak in the metrics.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace shardlm {

enum class MemoryRole {
  Parameters,     // the flat parameter buffer
  Gradients,      // the flat gradient buffer and ZeRO's gradient shard
  Optimizer,      // AdamW's moments
  Activations,    // a training stage's saved activations and their gradient scratch
  Communication,  // pipeline boundary buffers, exchanged gradients
  Workspace,      // kernel scratch, generation buffers
};
constexpr int kMemoryRoles = 6;
const char* memory_role_name(MemoryRole role);  // "parameters", "gradients", ...

struct MemoryTotals {
  std::array<size_t, kMemoryRoles> by_role{};  // bytes per role (index: MemoryRole)
  size_t total = 0;
  size_t of(MemoryRole role) const { return by_role[static_cast<size_t>(role)]; }
};

class MemoryAccount {
 public:
  void on_alloc(const void* p, size_t bytes, MemoryRole role);
  void on_free(const void* p);  // p must come from on_alloc (or be null)

  MemoryTotals live() const;
  // peak().total is the highest live total seen; peak().by_role[r] the highest live bytes of
  // role r (not necessarily at the same moment, so they may sum to more than total).
  MemoryTotals peak() const;
  // Starts a new peak window at the current live bytes (tests measure one trainer at a time).
  void reset_peak();

 private:
  struct Block {
    size_t bytes;
    MemoryRole role;
  };
  mutable std::mutex mu_;  // kernels' OpenMP threads never allocate, but host threads may
  std::unordered_map<const void*, Block> blocks_;
  MemoryTotals live_, peak_;
};

// "1.23 GiB" style, for the messages and the start-up print.
std::string format_bytes(double bytes);

}  // namespace shardlm
