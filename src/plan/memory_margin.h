// The headroom a run needs on top of the allocator's predicted peak (plan/memory_model.h):
// the process's own memory outside the backend allocator (binary, MPI, oneDNN, host copies,
// the allocator's rounding), measured as RSS minus allocator peak in docs/planner.md. The
// planner drops layouts and the trainer's preflight refuses runs with the same figure.
#pragma once

namespace shardlm {

constexpr double kMemoryMarginFraction = 0.05;          // of the predicted peak
constexpr double kMemoryMarginBytes = 384.0 * 1048576;  // per rank

inline double memory_need_with_margin(double predicted_peak_bytes) {
  return predicted_peak_bytes * (1.0 + kMemoryMarginFraction) + kMemoryMarginBytes;
}

}  // namespace shardlm
