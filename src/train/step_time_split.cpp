#include "train/step_time_split.h"

#include "core/clock.h"

namespace shardlm {

void StepTimeSplit::begin_step() {
  at_start_ = trace::time_totals();
  start_s_ = monotonic_seconds();
  start_cpu_s_ = process_cpu_seconds();
}

void StepTimeSplit::end_step() {
  const trace::TimeTotals now = trace::time_totals();
  step_s_ += monotonic_seconds() - start_s_;
  cpu_s_ += process_cpu_seconds() - start_cpu_s_;
  comm_s_ += now.comm_s - at_start_.comm_s;
  bubble_s_ += now.pipeline_s - at_start_.pipeline_s;
  ++steps_;
}

StepTimeSplit::Split StepTimeSplit::take(Communicator& world) {
  double sums[4] = {step_s_, comm_s_, bubble_s_, cpu_s_};  // summed over ranks
  world.all_reduce(sums, 4, DType::F64, ReduceOp::Sum);
  const double per = steps_ > 0 ? 1.0 / (static_cast<double>(steps_) * world.size()) : 0.0;
  Split s;
  s.comm_s = sums[1] * per;
  s.bubble_s = sums[2] * per;
  s.compute_s = sums[0] * per - s.comm_s - s.bubble_s;
  s.cpu_s = sums[3] * per;
  step_s_ = comm_s_ = bubble_s_ = cpu_s_ = 0;
  steps_ = 0;
  return s;
}

}  // namespace shardlm
