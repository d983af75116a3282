// The accounting around every backend's allocations (kernels/memory_account.h).
#include "kernels/backend.h"

#include <cstdint>
#include <string>

#include "core/error.h"

namespace shardlm {

void* KernelBackend::alloc(size_t n, DType dtype, MemoryRole role) {
  const size_t es = dtype_size(dtype);
  SHARDLM_CHECK(n <= SIZE_MAX / es, std::string("alloc: too many ") + dtype_name(dtype) +
                                        " elements: " + std::to_string(n));
  void* p = allocate_bytes(n * es);
  account_.on_alloc(p, n * es, role);
  return p;
}

void KernelBackend::free_memory(void* p) {
  if (p == nullptr) return;
  account_.on_free(p);
  release_bytes(p);
}

}  // namespace shardlm
