// Resolves a device name (`--device cpu|cuda`) to a kernel backend. The only place that knows
// which backends this binary was built with; train/, cli/ and tests ask here.
#pragma once

#include <string>
#include <vector>

#include "kernels/backend.h"

namespace shardlm {

struct BackendInfo {
  std::string name;     // "cpu", "cuda"
  bool built = false;   // compiled into this binary
  bool usable = false;  // built and its device is present here
  std::string why_not;  // when not usable: what is missing and what to do
};

// Every backend shardlm knows, built or not, in a fixed order (cpu first).
std::vector<BackendInfo> list_backends();
// Their names, without probing for devices (for checking a --device value before running).
std::vector<std::string> backend_names();

// The backend for `device`; throws shardlm::Error naming the device and why it cannot be
// used here (unknown name, not built, no device).
KernelBackend& resolve_backend(const std::string& device);

}  // namespace shardlm
