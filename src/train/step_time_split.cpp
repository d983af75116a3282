#include "train/step_time_split.h"

#include <chrono>

namespace shardlm {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void StepTimeSplit::begin_step() {
  at_start_ = trace::time_totals();
  start_s_ = now_s();
}

void StepTimeSplit::end_step() {
  const trace::TimeTotals now = trace::time_totals();
  step_s_ += now_s() - start_s_;
  comm_s_ += now.comm_s - at_start_.comm_s;
  bubble_s_ += now.pipeline_s - at_start_.pipeline_s;
  ++steps_;
}

StepTimeSplit::Split StepTimeSplit::take(Communicator& world) {
  double sums[3] = {step_s_, comm_s_, bubble_s_};  // [step, comm, bubble] summed over ranks
  world.all_reduce(sums, 3, DType::F64, ReduceOp::Sum);
  const double per = steps_ > 0 ? 1.0 / (static_cast<double>(steps_) * world.size()) : 0.0;
  Split s;
  s.comm_s = sums[1] * per;
  s.bubble_s = sums[2] * per;
  s.compute_s = sums[0] * per - s.comm_s - s.bubble_s;
  step_s_ = comm_s_ = bubble_s_ = 0;
  steps_ = 0;
  return s;
}

}  // namespace shardlm
