// Device memory for the CUDA backend: zero-filled allocations, copies and fills on the
// backend's stream. Copies to and from the host return only when the host buffer may be
// reused: pinned or pageable, the caller never has to synchronize first.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"

namespace shardlm {

namespace {
// cudaMalloc hands out 256-byte aligned blocks; a zero-element buffer still gets one, so that
// it is a valid, unique pointer as on the CPU backend.
constexpr size_t kMinAllocation = 256;

void* alloc_zeroed(size_t bytes, cudaStream_t stream) {
  const size_t size = bytes < kMinAllocation ? kMinAllocation : bytes;
  void* p = nullptr;
  if (cudaMalloc(&p, size) != cudaSuccess) {
    cudaGetLastError();  // clear the error before throwing our own
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail("CUDA backend: out of device memory allocating " + std::to_string(bytes) + " bytes (" +
         std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total_bytes >> 20) +
         " MiB)");
  }
  // Ordered before every later use of p, which all go through the same stream.
  CUDA_CHECK(cudaMemsetAsync(p, 0, size, stream));
  return p;
}
}  // namespace

void* CudaBackend::allocate_bytes(size_t bytes) {
  return alloc_zeroed(bytes, stream_);
}

void CudaBackend::release_bytes(void* p) {
  // Kernels queued on the stream may still use p.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  CUDA_CHECK(cudaFree(p));
}

size_t CudaBackend::device_free_bytes() const {
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

void CudaBackend::copy_from_host(void* dst, const void* src_host, size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, stream_));
  // From pinned memory the copy is asynchronous: wait, so the caller may reuse src_host.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_to_host(void* dst_host, const void* src, size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if (d < s + bytes && s < d + bytes) {
    // Overlapping ranges (memmove semantics, as the CPU backend): cudaMemcpy does not promise
    // them, so go through a staging buffer.
    void* staging = scratch(Scratch::CopyStaging, bytes);
    CUDA_CHECK(cudaMemcpyAsync(staging, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    src = staging;
  }
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::fill_zero(float* p, size_t n) {
  if (n != 0) CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(float), stream_));
}

void CudaBackend::synchronize() {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace shardlm
