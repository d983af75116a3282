#include "kernels/cpu/wait_policy.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace shardlm::cpu {

namespace {

constexpr const char* kSetHere = "SHARDLM_SET_WAIT_POLICY";

// Ranks on this node according to the launcher's environment (1 when it says nothing).
int launcher_local_ranks() {
  for (const char* var :
       {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_TASKS_PER_NODE"}) {
    const char* v = std::getenv(var);
    // SLURM's form is "4" or "4(x2),3": the leading count is this node's or a neighbour's;
    // either way more than one rank shares some node of the job.
    if (v != nullptr && *v != '\0') return std::atoi(v);
  }
  return 1;
}

}  // namespace

void restart_with_passive_wait_if_node_shared(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (launcher_local_ranks() <= 1) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  setenv(kSetHere, "1", 1);
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // exec failed: carry on as started
  unsetenv(kSetHere);
}

const char* describe_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (policy == nullptr)
    return std::getenv("GOMP_SPINCOUNT") != nullptr ? "GOMP_SPINCOUNT"
                                                    : "libgomp's default (spin, then sleep)";
  if (std::getenv(kSetHere) != nullptr) return "passive (set for ranks sharing a node)";
  static const std::string given = std::string(policy) + " (OMP_WAIT_POLICY)";
  return given.c_str();
}

}  // namespace shardlm::cpu
