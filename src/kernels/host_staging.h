// Host access to backend memory, in one place: the tied-embedding exchange, ZeRO's gathers and
// checkpoint I/O all go through it. For a backend whose memory is host memory (CPU) a staged
// buffer IS the backend buffer (no copy); for a device backend it is a host copy, filled from
// the device on construction (HostRead, HostReadWrite) and written back by flush()
// (HostWrite, HostReadWrite).
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/backend.h"

namespace shardlm {

class HostStaged {
 public:
  enum class Mode { Read, Write, ReadWrite };
  // n floats at `p` (backend memory).
  HostStaged(KernelBackend& be, float* p, size_t n, Mode mode);
  HostStaged(KernelBackend& be, const float* p, size_t n);  // Read
  HostStaged(const HostStaged&) = delete;
  HostStaged& operator=(const HostStaged&) = delete;

  float* data() { return host_; }
  const float* data() const { return host_; }
  size_t size() const { return n_; }
  // Copies the host data back to the backend buffer (a no-op where they are the same memory).
  // Not for Read views.
  void flush();

 private:
  KernelBackend& be_;
  Mode mode_;
  float* device_;
  size_t n_;
  float* host_;
  std::vector<float> copy_;
};

}  // namespace shardlm
