// MPI start-up and shut-down, without exposing MPI's types (the process's only direct MPI
// calls besides the MPI communicator's own are here).
#pragma once

namespace shardlm {

// Initialises MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI, OpenMP threads do
// not) unless it already is, and finalises it on destruction if this object initialised it.
// MPI_COMM_WORLD then returns errors instead of aborting, so MPI_CHECK can throw.
class MpiRuntime {
 public:
  MpiRuntime(int* argc = nullptr, char*** argv = nullptr);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  bool initialised_here() const { return initialised_here_; }
  // The number of ranks in MPI_COMM_WORLD.
  int world_size() const;

 private:
  bool initialised_here_ = false;
};

}  // namespace shardlm
