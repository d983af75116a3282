// Asking a run to stop early and save: SIGTERM or SIGUSR1 (SLURM's preemption and pre-timeout
// signals, and what the launcher passes on), or the --exit-after-minutes wall-clock budget.
// Every rank must stop after the same step, so the ranks agree on it at the end of every step.
#pragma once

#include <csignal>
#include <string>

#include "parallel/comm.h"

namespace shardlm {

class StopRequest {
 public:
  // Installs the SIGTERM/SIGUSR1 handlers. Construct it before MPI start-up: the signal may come
  // at any time, and SIGUSR1's default action would kill the rank instead of saving.
  // The signals are blocked from then on in the constructing thread and in every thread it
  // starts; the destructor restores the signal mask.
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  // Counts `minutes` from now (rank 0's clock decides); 0: no budget.
  void set_time_budget(double minutes);

  // Collective over `world` (a MAX all-reduce): 0 when no rank wants to stop, else a reason
  // code, the same on every rank: the highest signal number any rank received, or 1 when only
  // rank 0's time budget is spent.
  int agree(Communicator& world);

  // "signal 15" or "time budget".
  static std::string describe(int reason);

 private:
  // The highest stop signal received so far (pending ones taken now); 0: none.
  int take_signals();

  double deadline_ = 0;  // steady-clock seconds; 0: none
  int received_ = 0;     // the highest signal taken so far
  sigset_t saved_mask_;  // the thread's signal mask before construction
};

}  // namespace shardlm
