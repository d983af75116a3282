// Host memory for the CPU backend: 64-byte aligned (one cache line, one AVX-512 vector) and
// zero-filled, as KernelBackend promises.
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace shardlm {

namespace {
constexpr size_t kAlignment = 64;

void* alloc_zeroed(size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment; never ask for 0 bytes, so
  // that a zero-element buffer is still a valid, unique pointer.
  const size_t rounded =
      bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  SHARDLM_CHECK(rounded >= bytes, "allocation size overflows: " + std::to_string(bytes) + " bytes");
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr)
    fail("CPU backend: out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  return p;
}
}  // namespace

void* CpuBackend::allocate_bytes(size_t bytes) {
  return alloc_zeroed(bytes);
}

void CpuBackend::release_bytes(void* p) {
  std::free(p);
}

void CpuBackend::copy_from_host(void* dst, const void* src_host, size_t bytes) {
  if (bytes != 0) std::memcpy(dst, src_host, bytes);
}

void CpuBackend::copy_to_host(void* dst_host, const void* src, size_t bytes) {
  if (bytes != 0) std::memcpy(dst_host, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes != 0 && dst != src) std::memmove(dst, src, bytes);
}

void CpuBackend::fill_zero(float* p, size_t n) {
  if (n != 0) std::memset(p, 0, n * sizeof(float));
}

// Every CPU kernel has finished when it returns.
void CpuBackend::synchronize() {}

}  // namespace shardlm
