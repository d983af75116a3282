// CudaBackend's life cycle: device, stream and cuBLAS handle, the math mode, the backend's
// grow-on-demand workspaces, and the process-wide instance.
#include "kernels/cuda/cuda_backend.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"

namespace shardlm {

namespace {
// SHARDLM_CUDA_TF32=1 turns TF32 GEMMs on for every run of a program (benchmarks, trials)
// without a flag of its own.
bool tf32_from_environment() {
  const char* value = std::getenv("SHARDLM_CUDA_TF32");
  return value != nullptr && std::strcmp(value, "1") == 0;
}
}  // namespace

CudaBackend::CudaBackend() {
  if (!cuda_device_available()) fail("CUDA backend: no CUDA device is visible to this process");
  CUDA_CHECK(cudaGetDevice(&device_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&cublas_));
  CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  set_tf32(tf32_from_environment());
}

CudaBackend::~CudaBackend() {
  // Runs at process exit, possibly after the CUDA runtime has begun to shut down: errors are
  // ignored rather than thrown from a destructor.
  for (void* p : scratch_ptr_)
    if (p != nullptr) cudaFree(p);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void CudaBackend::set_tf32(bool enabled) {
  CUBLAS_CHECK(
      cublasSetMathMode(cublas_, enabled ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  tf32_ = enabled;
}

void* CudaBackend::scratch(Scratch slot, size_t bytes) {
  const int i = static_cast<int>(slot);
  if (bytes > scratch_bytes_[i]) {
    // Kernels queued earlier may still read the old buffer.
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (scratch_ptr_[i] != nullptr) {
      memory().on_free(scratch_ptr_[i]);
      CUDA_CHECK(cudaFree(scratch_ptr_[i]));
    }
    scratch_ptr_[i] = nullptr;
    scratch_bytes_[i] = 0;
    // Grow by half again, so that a slowly growing size does not reallocate every call.
    const size_t grown = bytes + bytes / 2;
    if (cudaMalloc(&scratch_ptr_[i], grown) != cudaSuccess) {
      cudaGetLastError();  // clear the error before throwing our own
      fail("CUDA backend: out of device memory allocating a " + std::to_string(grown) +
           "-byte workspace");
    }
    scratch_bytes_[i] = grown;
    memory().on_alloc(scratch_ptr_[i], grown, MemoryRole::Workspace);
  }
  return scratch_ptr_[i];
}

KernelBackend& cuda_backend() {
  static CudaBackend backend;
  return backend;
}

bool cuda_device_available() {
  return cuda_runtime_device_count() > 0;
}

int cuda_runtime_device_count() {
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error, report none
    return 0;
  }
  return count;
}

void use_cuda_device(int device) {
  const cudaError_t rc = cudaSetDevice(device);
  if (rc != cudaSuccess)
    fail("cudaSetDevice(" + std::to_string(device) + "): " + cudaGetErrorString(rc));
}

}  // namespace shardlm
