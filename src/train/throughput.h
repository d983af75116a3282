// How fast the training loop goes, over windows of steps (from one progress line to the next):
// seconds per step, tokens per second and model FLOPs utilisation (MFU: model FLOPs per second
// over the job's peak; the model family counts the model FLOPs, model/family.h).
#pragma once

#include "parallel/comm.h"

namespace shardlm {

class Throughput {
 public:
  // `peak_flops`: the whole job's (every rank's peak summed). The clock starts now.
  Throughput(double tokens_per_step, double flops_per_token, double peak_flops);

  void step_done() { ++window_steps_; }
  // Starts the window afresh without reporting it (after work that is not training steps).
  void restart_window();

  struct Window {
    double seconds_per_step = 0;
    double tokens_per_s = 0;
    double mfu = 0;
  };
  // The rates over the steps since the last call (or since construction); starts a new window.
  Window take();

  double elapsed_s() const;  // since construction

 private:
  double tokens_per_step_, flops_per_token_, peak_flops_;
  double start_, window_start_;
  int window_steps_ = 0;
};

// One rank's peak FLOP/s: --peak-tflops when given (> 0), else this node's usable CPUs x one
// core's fp32 FMA peak at the running ISA level (measured), divided among the ranks on the node.
// Collective over `world` without --peak-tflops (it counts the ranks per node).
double peak_flops_per_rank(double peak_tflops, Communicator& world);

}  // namespace shardlm
