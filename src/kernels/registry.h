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

// The environment variable that stands in for the CUDA runtime's device count (tests: a build
// without CUDA, or a machine without GPUs, computes the GPU binding of --device cuda).
inline constexpr const char* kFakeCudaDeviceCountVar = "SHARDLM_FAKE_CUDA_DEVICE_COUNT";

// The CUDA devices this process sees: SHARDLM_FAKE_CUDA_DEVICE_COUNT when set (a whole number,
// else an error naming it), otherwise the CUDA runtime's count (CUDA_VISIBLE_DEVICES applies; 0
// without a driver). Throws in a build without CUDA when the variable is unset.
int cuda_device_count();

// Makes `device` the CUDA device the backend is created on (before the first
// resolve_backend("cuda")). Does nothing when the count is faked (no such device need exist) or
// in a build without CUDA (which refuses --device cuda in resolve_backend).
void select_cuda_device(int device);

}  // namespace shardlm
