#include "parallel/mpi_runtime.h"

#include <mpi.h>

#include <string>

#include "core/error.h"
#include "parallel/mpi_comm.h"

namespace shardlm {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialised = 0;
  MPI_CHECK(MPI_Initialized(&initialised));
  if (initialised) return;
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    fail("MPI provides thread level " + std::to_string(provided) +
         ", below MPI_THREAD_FUNNELED, which OpenMP kernels next to MPI calls need");
  }
  initialised_here_ = true;
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

MpiRuntime::~MpiRuntime() {
  if (!initialised_here_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

int MpiRuntime::world_size() const {
  int size = 1;
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  return size;
}

}  // namespace shardlm
