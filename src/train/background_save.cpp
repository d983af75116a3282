#include "train/background_save.h"

#include <pthread.h>
#include <signal.h>

#include "core/error.h"
#include "core/trace.h"

namespace shardlm {

namespace {

// The writer thread takes no signals at all (it inherits StopRequest's blocked SIGTERM/SIGUSR1,
// which the training thread takes at step ends): its writes are never interrupted.
void block_signals_on_this_thread() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

}  // namespace

BackgroundSave::~BackgroundSave() {
  join();
}

void BackgroundSave::join() {
  if (thread_.joinable()) thread_.join();
}

void BackgroundSave::launch(std::function<std::string()> job) {
  job_done_.store(false, std::memory_order_relaxed);
  thread_ = std::thread([this, job = std::move(job)] {
    block_signals_on_this_thread();
    trace::ignore_spans_on_this_thread();
    std::string error;
    try {
      error = job();
    } catch (const std::exception& e) {
      error = e.what();
    }
    job_error_ = std::move(error);
    job_done_.store(true, std::memory_order_release);
  });
}

void BackgroundSave::start(std::unique_ptr<CheckpointSave> save, std::function<void()> copy,
                           std::function<void()> after_commit) {
  SHARDLM_CHECK(!in_flight(), "BackgroundSave::start with a save in flight");
  save_ = std::move(save);
  after_commit_ = std::move(after_commit);
  phase_ = Phase::Writing;
  copied_ = !copy;  // the thread is not running: no lock needed
  launch([this, s = save_.get(), copy = std::move(copy)] {
    if (copy) {
      const std::string error = run_copy(copy);
      if (!error.empty()) return error;
    }
    return s->write_rank_file();
  });
}

std::string BackgroundSave::run_copy(const std::function<void()>& copy) {
  std::string error;
  try {
    copy();
  } catch (const std::exception& e) {
    error = std::string("copying the snapshot: ") + e.what();
  }
  {
    const std::lock_guard<std::mutex> lock(copy_mutex_);
    copied_ = true;  // also after a failure: the training thread must not wait forever
  }
  copy_cv_.notify_all();
  return error;
}

bool BackgroundSave::wait_until_copied() {
  std::unique_lock<std::mutex> lock(copy_mutex_);
  if (copied_) return false;
  copy_cv_.wait(lock, [this] { return copied_; });
  return true;
}

std::optional<std::filesystem::path> BackgroundSave::advance(Communicator& world, bool block) {
  if (block) join();
  int32_t done = job_done_.load(std::memory_order_acquire) ? 1 : 0;
  world.all_reduce(&done, 1, DType::I32, ReduceOp::Min);
  if (done == 0) return std::nullopt;
  join();
  if (phase_ == Phase::Writing) {
    save_->gather(world, job_error_);
    phase_ = Phase::Committing;
    launch([s = save_.get(), after = after_commit_]() -> std::string {
      std::string error = s->commit();
      if (error.empty() && s->leader() && after) after();
      return error;
    });
    return std::nullopt;
  }
  std::filesystem::path dir = save_->committed(world, job_error_);
  save_.reset();
  return dir;
}

std::optional<std::filesystem::path> BackgroundSave::guarded_advance(Communicator& world,
                                                                     bool block) {
  try {
    return advance(world, block);
  } catch (...) {
    join();  // a failed save is over: nothing is left in flight
    save_.reset();
    throw;
  }
}

std::optional<std::filesystem::path> BackgroundSave::poll(Communicator& world) {
  if (!in_flight()) return std::nullopt;
  return guarded_advance(world, false);
}

std::optional<std::filesystem::path> BackgroundSave::wait(Communicator& world) {
  while (in_flight())
    if (auto dir = guarded_advance(world, true)) return dir;
  return std::nullopt;
}

}  // namespace shardlm
