#include "train/stop_request.h"

#include <algorithm>
#include <chrono>
#include <csignal>

namespace shardlm {

namespace {

// Set by the handler; read at step ends. A repeated signal just sets it again.
volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) {
  g_stop_signal = sig;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int kTimeBudget = 1;  // below every signal number

}  // namespace

StopRequest::StopRequest() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

void StopRequest::set_time_budget(double minutes) {
  deadline_ = minutes > 0 ? now_seconds() + minutes * 60.0 : 0.0;
}

int StopRequest::agree(Communicator& world) const {
  int reason = static_cast<int>(g_stop_signal);
  if (world.rank() == 0 && deadline_ > 0 && now_seconds() > deadline_)
    reason = std::max(reason, kTimeBudget);
  world.all_reduce(&reason, 1, DType::I32, ReduceOp::Max);
  return reason;
}

std::string StopRequest::describe(int reason) {
  return reason > kTimeBudget ? "signal " + std::to_string(reason) : "time budget";
}

}  // namespace shardlm
