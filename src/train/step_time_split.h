// Where a training step's time goes, measured on every rank around Trainer::train_step:
//   comm_s     time in communicator calls (TP all-reduces, DP gradient sync, the norm, ...)
//   bubble_s   time in pipeline sends and receives: waiting for the neighbour stage (the
//              transfer itself included, which is small next to the wait)
//   compute_s  the rest of the step (kernels, host work)
// and cpu_s, the CPU time the rank's process used in the step (all its threads): next to the
// wall time it shows how much of the machine the rank got (threads x step time when it ran
// alone, less when ranks or other work share the cores).
// The communicator and the pipeline always time their calls (core/trace.h), so this costs
// two clock reads per call and nothing per kernel.
#pragma once

#include "core/trace.h"
#include "parallel/comm.h"

namespace shardlm {

class StepTimeSplit {
 public:
  void begin_step();
  void end_step();

  struct Split {
    double compute_s = 0, comm_s = 0, bubble_s = 0, cpu_s = 0;
  };
  // Per-step means over the steps since the last take, averaged over the ranks of `world`
  // (collective: every rank calls it at the same steps). Starts a new window.
  Split take(Communicator& world);

 private:
  double start_s_ = 0, start_cpu_s_ = 0;
  trace::TimeTotals at_start_;
  double step_s_ = 0, comm_s_ = 0, bubble_s_ = 0, cpu_s_ = 0;  // sums over the window
  int steps_ = 0;
};

}  // namespace shardlm
