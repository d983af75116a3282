#include "train/stop_request.h"

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <ctime>

#include "core/clock.h"

namespace shardlm {

namespace {

// Set by the handler, which runs only in a thread that unblocked the signals again (none of
// ours); read at step ends. A repeated signal just sets it again.
volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) {
  g_stop_signal = sig;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
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
  // Blocked in this thread and so in every thread started from it later (MPI's progress
  // threads, OpenMP's workers): a stop signal stays pending until take_signals() takes it at a
  // step end. Delivered asynchronously it interrupted whatever a thread was doing, and 1 early
  // stop in about 90 then died of heap corruption ("corrupted size vs. prev_size") in the save
  // that followed; taken synchronously it interrupts nothing.
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, &saved_mask_);
}

StopRequest::~StopRequest() {
  pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
}

int StopRequest::take_signals() {
  const sigset_t set = stop_signals();
  const timespec no_wait{0, 0};
  for (int sig; (sig = sigtimedwait(&set, nullptr, &no_wait)) > 0;)
    received_ = std::max(received_, sig);
  return received_ = std::max(received_, static_cast<int>(g_stop_signal));
}

void StopRequest::set_time_budget(double minutes) {
  deadline_ = minutes > 0 ? monotonic_seconds() + minutes * 60.0 : 0.0;
}

int StopRequest::agree(Communicator& world) {
  int reason = take_signals();
  if (world.rank() == 0 && deadline_ > 0 && monotonic_seconds() > deadline_)
    reason = std::max(reason, kTimeBudget);
  world.all_reduce(&reason, 1, DType::I32, ReduceOp::Max);
  return reason;
}

std::string StopRequest::describe(int reason) {
  return reason > kTimeBudget ? "signal " + std::to_string(reason) : "time budget";
}

}  // namespace shardlm
