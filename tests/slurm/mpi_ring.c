// mpi_ring: passes each rank's id to its right neighbour and all-reduces the ids, then checks
// both against what N ranks must give. argv[1] is the expected number of ranks, so that N
// singletons (what a launcher without PMI wiring produces) fail instead of passing N times.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int expected = argc > 1 ? atoi(argv[1]) : size;
  if (size != expected) {
    fprintf(stderr, "mpi_ring: rank %d sees %d ranks, expected %d\n", rank, size, expected);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;
  int from_left = -1, sum = 0;
  MPI_Sendrecv(&rank, 1, MPI_INT, right, 0, &from_left, 1, MPI_INT, left, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (from_left != left || sum != size * (size - 1) / 2) {
    fprintf(stderr, "mpi_ring: rank %d got %d from the left (expected %d), sum %d\n", rank, from_left, left, sum);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank == 0) printf("mpi_ring: %d ranks ok\n", size);
  MPI_Finalize();
  return 0;
}
