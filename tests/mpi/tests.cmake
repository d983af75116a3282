# MPI tests: shardlm_mpi_test(<name> <np> [args]) runs tests/mpi/<name>.cpp under mpirun -np <np>.
shardlm_mpi_test(test_comm 4)
shardlm_mpi_test(test_comm 3)
shardlm_mpi_test(test_mesh 8)
# TP groups inside a host, ranks per host (one host here; tests/multinode runs it on several).
shardlm_mpi_test(test_mesh_hosts 4 --tp 2 --pp 1)
# Parallel layouts trained for 10 steps against the single-rank run (issue: 3D parallelism).
shardlm_mpi_test(test_parallel_equivalence 1)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 1 --pp 1)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 2 --pp 1)
shardlm_mpi_test(test_checkpoint_mpi 4)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 1 --pp 2)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 2 --pp 2)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 2 --pp 1)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 1 --pp 2)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 1 --pp 2 --zero 1)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 1 --pp 1 --zero 1)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 2 --pp 1 --zero 1)
shardlm_mpi_test(test_parallel_equivalence 8 --tp 2 --pp 2)
shardlm_mpi_test(test_parallel_equivalence 8 --tp 2 --pp 2 --zero 1)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 4 --pp 1)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 1 --pp 4 --n-layer 6 --pp-layers 1,2,2,1)
shardlm_mpi_test(test_parallel_equivalence 3 --tp 1 --pp 3 --pp-layers 2,1,1)
shardlm_mpi_test(test_checkpoint_reshard 8)
# ZeRO-1 with dp = 1 (the shard is the whole buffer).
shardlm_mpi_test(test_parallel_equivalence 2 --tp 2 --pp 1 --zero 1)
# The Llama family on the same layouts (issue: Llama): GQA with 2 kv heads (tp2 = n_kv_head),
# untied head; a tied head across pipeline stages; MQA on one TP rank with DP + ZeRO-1.
shardlm_mpi_test(test_parallel_equivalence 1 --family llama)
shardlm_mpi_test(test_parallel_equivalence 2 --family llama --tp 2 --pp 1)
shardlm_mpi_test(test_parallel_equivalence 2 --family llama --tp 1 --pp 2 --tie 1)
shardlm_mpi_test(test_parallel_equivalence 4 --family llama --tp 2 --pp 2)
shardlm_mpi_test(test_parallel_equivalence 2 --family llama --tp 1 --pp 1 --zero 1 --kv-heads 1)
shardlm_mpi_test(test_parallel_equivalence 8 --family llama --tp 2 --pp 2 --zero 1)
# The planner's per-rank memory prediction against the allocator's measured peak (issue 12).
shardlm_mpi_test(test_memory_model 4)
# ZeRO-2 (gradients reduce-scattered per layer during backward) and ZeRO-3 (parameters gathered
# per layer) on dp2, dp2 x tp2, dp2 x pp2, both families (issue: billions of parameters); with
# recomputation on some, which must not change the result.
shardlm_mpi_test(test_parallel_equivalence 2 --tp 1 --pp 1 --zero 2)
shardlm_mpi_test(test_parallel_equivalence 2 --tp 1 --pp 1 --zero 3)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 2 --pp 1 --zero 2)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 2 --pp 1 --zero 3 --recompute full)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 1 --pp 2 --zero 2 --recompute selective)
shardlm_mpi_test(test_parallel_equivalence 4 --tp 1 --pp 2 --zero 3)
shardlm_mpi_test(test_parallel_equivalence 2 --family llama --tp 1 --pp 1 --zero 2)
shardlm_mpi_test(test_parallel_equivalence 2 --family llama --tp 1 --pp 1 --zero 3 --recompute selective)
shardlm_mpi_test(test_parallel_equivalence 4 --family llama --tp 2 --pp 1 --zero 2 --recompute full)
shardlm_mpi_test(test_parallel_equivalence 4 --family llama --tp 2 --pp 1 --zero 3)
shardlm_mpi_test(test_parallel_equivalence 4 --family llama --tp 1 --pp 2 --zero 2)
shardlm_mpi_test(test_parallel_equivalence 4 --family llama --tp 1 --pp 2 --zero 3 --tie 1 --recompute full)
# Recomputation without ZeRO on a 3D layout.
shardlm_mpi_test(test_parallel_equivalence 8 --tp 2 --pp 2 --recompute full)
shardlm_mpi_test(test_parallel_equivalence 8 --family llama --tp 2 --pp 2 --zero 3 --recompute selective)
