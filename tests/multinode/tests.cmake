# Multi-node tests on test hosts made of network namespaces (tests/multinode/cluster.py), label
# `multinode`; they need root and skip (77) without it. multinode_sweep, the cleanup fixture,
# removes what a harness killed outright (a timeout) left behind. Every script takes
# CASE BUILD_DIR SCRATCH_DIR; the test is named multinode_<case>.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(SHARDLM_MULTINODE ${CMAKE_CURRENT_SOURCE_DIR}/multinode)
add_test(NAME multinode_sweep COMMAND /usr/bin/python3 ${SHARDLM_MULTINODE}/cluster.py sweep)
set_tests_properties(multinode_sweep PROPERTIES LABELS "multinode" FIXTURES_CLEANUP multinode_hosts)

function(shardlm_multinode_test script case timeout)
  add_test(NAME multinode_${case}
           COMMAND /usr/bin/python3 ${SHARDLM_MULTINODE}/${script} ${case}
                   ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR}/multinode/${case})
  set_tests_properties(multinode_${case} PROPERTIES LABELS "multinode" TIMEOUT ${timeout}
                       PROCESSORS 4 SKIP_RETURN_CODE 77 FIXTURES_REQUIRED multinode_hosts)
endfunction()

foreach(case harness equivalence mesh-hosts node-failure)
  shardlm_multinode_test(test_multinode.py ${case} 900)
endforeach()
shardlm_multinode_test(test_gpu_binding.py gpu-binding 300)  # device = node-local rank, fake count
shardlm_multinode_test(test_traffic.py traffic-bytes 600)  # link bytes vs plan/traffic.h
shardlm_multinode_test(test_traffic.py traffic-rate 300)   # step time over rate-limited links
shardlm_multinode_test(test_faults.py partition 900)       # link down: hang, lost ranks named
shardlm_multinode_test(test_faults.py host-failure 900)    # host dead: crash, lost ranks named
shardlm_multinode_test(test_faults.py host-processes-killed 900)  # host answers, its ranks died
# SLURM across the hosts (tests/slurm/slurm_cluster.sh with SLURM_TEST_HOSTS): sbatch --nodes=2
# of slurm/shardlm-cpu.sbatch through shardlm-launch and srun --mpi=pmix.
shardlm_multinode_test(test_slurm.py slurm-timelimit 600)  # warning save, requeue, resume
shardlm_multinode_test(test_slurm.py slurm-requeue 600)    # preemption: requeue from outside
