// OpenMP's wait policy for ranks that share a node (portable:
// kernels/cpu/portable/wait_policy.cpp).
//
// libgomp's default makes idle threads spin before they sleep; a spinning thread takes the core
// that another rank (or its own descheduled partner) needs, which on a shared machine cost mini
// 2.6x (docs/performance.md). libgomp reads OMP_WAIT_POLICY once, when it loads, before main()
// runs, so the policy cannot be changed from inside: the process starts itself again with it.
#pragma once

namespace shardlm::cpu {

// When the launcher says several ranks share this node (OMPI_COMM_WORLD_LOCAL_SIZE,
// MPI_LOCALNRANKS or SLURM_STEP_TASKS_PER_NODE > 1) and neither OMP_WAIT_POLICY nor
// GOMP_SPINCOUNT is set, sets OMP_WAIT_POLICY=passive and re-executes this program with the
// same arguments (same pid, before MPI starts). Returns only when nothing needed doing or the
// exec failed (the run then keeps libgomp's default).
void restart_with_passive_wait_if_node_shared(char** argv);

// "passive (set for a shared node)", "active (OMP_WAIT_POLICY)", "libgomp's default", ...
const char* describe_wait_policy();

}  // namespace shardlm::cpu
