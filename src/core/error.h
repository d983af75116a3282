// One family of check macros. Each throws shardlm::Error carrying the failed expression, the
// file and line, and the MPI rank and host that hit it, so a message from rank 13 of a
// 64-rank job says where it came from. Library code never exits; the CLI catches Error.
#pragma once

#include <stdexcept>
#include <string>

namespace shardlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad input that the user fixes by changing a flag or a config file (unknown or contradictory
// settings, values out of range, a layout that does not divide the model): the CLI exits with
// kExitUsage (2) instead of kExitError.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Set once by the mesh at start-up; -1 (unknown) before that.
void set_error_rank(int rank);
int error_rank();

// The one generic helper behind every macro. `kind` names the library ("MPI", "HDF5", ...),
// `detail` is the library's own message for the error code.
[[noreturn]] void throw_error(const char* kind, const char* expr, const char* file, int line,
                              const std::string& detail);

// A plain user-facing error (bad flag, bad file): message only, plus rank and host.
[[noreturn]] void fail(const std::string& message);

}  // namespace shardlm

// Condition check with a message (a std::string expression, may use +).
#define SHARDLM_CHECK(cond, msg)                                                    \
  do {                                                                              \
    if (!(cond)) ::shardlm::throw_error("check", #cond, __FILE__, __LINE__, (msg)); \
  } while (0)

// MPI: any return code other than MPI_SUCCESS. Needs <mpi.h> and error.cpp's mpi_error_string.
namespace shardlm {
std::string mpi_error_string(int code);
std::string hdf5_error_string();
}  // namespace shardlm

#define MPI_CHECK(call)                                                     \
  do {                                                                      \
    int shardlm_mpi_rc_ = (call);                                           \
    if (shardlm_mpi_rc_ != 0)                                               \
      ::shardlm::throw_error("MPI", #call, __FILE__, __LINE__,              \
                             ::shardlm::mpi_error_string(shardlm_mpi_rc_)); \
  } while (0)

// HDF5: calls return a negative value (herr_t or hid_t) on failure.
#define H5_CHECK(call)                                                                           \
  do {                                                                                           \
    if ((call) < 0)                                                                              \
      ::shardlm::throw_error("HDF5", #call, __FILE__, __LINE__, ::shardlm::hdf5_error_string()); \
  } while (0)

// CUDA / cuBLAS / NCCL: defined in kernels/cuda/cuda_check.h, built on throw_error as well.
