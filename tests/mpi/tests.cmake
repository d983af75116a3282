# MPI tests: shardlm_mpi_test(<name> <np> [args]) runs tests/mpi/<name>.cpp under mpirun -np <np>.
shardlm_mpi_test(test_comm 4)
shardlm_mpi_test(test_comm 3)
shardlm_mpi_test(test_mesh 8)
# Parallel layouts trained for 10 steps against the single-rank run (issue: 3D parallelism).
shardlm_mpi_test(test_parallel_equivalence 1)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 1 --pp 1)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 2 --pp 1)
shardlm_mpi_test(test_checkpoint_mpi 4)
