#include "kernels/cpu/cpu_backend.h"

namespace shardlm {

KernelBackend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace shardlm
