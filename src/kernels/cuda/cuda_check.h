// CUDA and cuBLAS check macros, built on the same throw_error helper as MPI_CHECK and H5_CHECK
// (core/error.h): a failed call throws shardlm::Error with the expression, file, line, rank,
// host and the library's own message for the code.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

// Any cudaError_t other than cudaSuccess.
#define CUDA_CHECK(call)                                                              \
  do {                                                                                \
    const cudaError_t shardlm_cuda_rc_ = (call);                                      \
    if (shardlm_cuda_rc_ != cudaSuccess)                                              \
      ::shardlm::throw_error("CUDA", #call, __FILE__, __LINE__,                       \
                             std::string(cudaGetErrorName(shardlm_cuda_rc_)) + ": " + \
                                 cudaGetErrorString(shardlm_cuda_rc_));               \
  } while (0)

// Any cublasStatus_t other than CUBLAS_STATUS_SUCCESS.
#define CUBLAS_CHECK(call)                                               \
  do {                                                                   \
    const cublasStatus_t shardlm_cublas_rc_ = (call);                    \
    if (shardlm_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                     \
      ::shardlm::throw_error("cuBLAS", #call, __FILE__, __LINE__,        \
                             cublasGetStatusString(shardlm_cublas_rc_)); \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, at the launch that made
// them, instead of at some later call.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
