// OpenMP threads per rank for the CPU backend (portable: kernels/cpu/portable/threads.cpp).
//
// Every rank on a node starting a team as large as the node oversubscribes the cores by the
// node's rank count (the issue measured tp2 on 2 cores at 10x slower than one thread per
// rank). By default each rank takes its share instead.
#pragma once

#include <string>

namespace shardlm::cpu {

struct CpuThreads {
  int threads;         // OpenMP threads this rank runs
  std::string reason;  // where the number comes from, for the run's header
};

// The threads of one rank: `flag` (--threads) when > 0, else a positive OMP_NUM_THREADS
// (`omp_num_threads`, may be null), else max(1, cores / ranks_on_node).
CpuThreads choose_cpu_threads(int flag, const char* omp_num_threads, int cores, int ranks_on_node);

// The CPUs this process may run on (its affinity mask; hardware_concurrency if unavailable).
int usable_cpu_count();

// Sets the OpenMP (and so oneDNN's) thread count for the parallel regions that follow.
void set_cpu_threads(int threads);

}  // namespace shardlm::cpu
