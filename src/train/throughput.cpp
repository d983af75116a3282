#include "train/throughput.h"

#include <algorithm>

#include "core/clock.h"
#include "kernels/cpu/peak_flops.h"
#include "kernels/cpu/threads.h"

namespace shardlm {

Throughput::Throughput(double tokens_per_step, double flops_per_token, double peak_flops)
    : tokens_per_step_(tokens_per_step),
      flops_per_token_(flops_per_token),
      peak_flops_(peak_flops),
      start_(monotonic_seconds()),
      window_start_(start_) {}

Throughput::Window Throughput::take() {
  const double now = monotonic_seconds();
  Window w;
  w.seconds_per_step = (now - window_start_) / std::max(1, window_steps_);
  w.tokens_per_s = tokens_per_step_ / w.seconds_per_step;
  w.mfu = w.tokens_per_s * flops_per_token_ / peak_flops_;
  window_start_ = now;
  window_steps_ = 0;
  return w;
}

void Throughput::restart_window() {
  window_start_ = monotonic_seconds();
  window_steps_ = 0;
}

double Throughput::elapsed_s() const {
  return monotonic_seconds() - start_;
}

double peak_flops_per_rank(double peak_tflops, Communicator& world) {
  // The same settings on every rank: all of them take the collective branch or none.
  if (peak_tflops > 0) return peak_tflops * 1e12;
  return cpu::core_peak_flops() * cpu::usable_cpu_count() / world.ranks_on_my_node();
}

}  // namespace shardlm
