#include "kernels/cpu/threads.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "core/parse.h"

namespace shardlm::cpu {

CpuThreads choose_cpu_threads(int flag, const char* omp_num_threads, int cores, int ranks_on_node) {
  if (flag > 0) return {flag, "--threads"};
  if (omp_num_threads != nullptr && *omp_num_threads != '\0') {
    // OMP_NUM_THREADS may be a list (nested levels): its first entry is the outer team.
    const std::string first =
        std::string(omp_num_threads).substr(0, std::string(omp_num_threads).find(','));
    const int n = parse_int("OMP_NUM_THREADS", first);
    if (n < 1)
      fail("OMP_NUM_THREADS=" + std::string(omp_num_threads) + ": not a thread count >= 1");
    return {n, "OMP_NUM_THREADS"};
  }
  const int ranks = std::max(1, ranks_on_node);
  return {std::max(1, cores / ranks),
          std::to_string(cores) + " CPUs / " + std::to_string(ranks) + " rank(s) on this node"};
}

int usable_cpu_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void set_cpu_threads(int threads) {
  SHARDLM_CHECK(threads >= 1, "thread count " + std::to_string(threads));
  omp_set_num_threads(threads);
}

}  // namespace shardlm::cpu
