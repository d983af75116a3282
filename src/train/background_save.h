// A checkpoint save whose local phases run on a background thread while training continues
// (--async-save), at most one at a time. Every collective phase stays on the training thread
// (MPI is initialised MPI_THREAD_FUNNELED): it constructs the CheckpointSave (step_X.tmp/
// exists), and poll(), called by every rank at every step boundary while a save is in flight,
// asks with one all-reduce whether every rank finished its local phase; when so it runs the
// next collective phase and starts the next local one:
//
//   start: CheckpointSave (collective) -> thread: [snapshot copy], write_rank_file
//   poll:  all done? -> gather (collective) -> thread on rank 0: commit, then after_commit
//   poll:  all done? -> committed (collective): the save is over
//
// A failure on any rank throws on every rank from the poll that finds it, naming the rank and
// the file; step_X.tmp/ then stays uncommitted and `latest` names the previous checkpoint.
// The thread never touches a communicator, and while it runs no other thread may call HDF5.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/checkpoint_save.h"
#include "parallel/comm.h"

namespace shardlm {

class BackgroundSave {
 public:
  BackgroundSave() = default;
  ~BackgroundSave();  // waits for the thread; never commits (no collective in a destructor)
  BackgroundSave(const BackgroundSave&) = delete;
  BackgroundSave& operator=(const BackgroundSave&) = delete;

  // Starts `save` on the thread: first `copy` (the snapshot copy, when it is left to the
  // thread; empty: none), then its rank file. `after_commit` runs on rank 0's thread after a
  // successful commit (retention); what it throws fails the save. No save may be in flight.
  void start(std::unique_ptr<CheckpointSave> save, std::function<void()> copy,
             std::function<void()> after_commit);
  bool in_flight() const { return save_ != nullptr; }
  // Training thread: blocks until the thread has run the `copy` of the last start (returns at
  // once when it has, or when there was none). Returns whether it had to wait.
  bool wait_until_copied();

  // Collective while in_flight() (every rank calls it at the same points): advances the save
  // when every rank finished its local phase. Returns the committed directory when the save
  // ended with this call.
  std::optional<std::filesystem::path> poll(Communicator& world);
  // Collective: finishes the save in flight, if any; returns its directory.
  std::optional<std::filesystem::path> wait(Communicator& world);

 private:
  enum class Phase { Writing, Committing };
  // One poll: `block` waits for this rank's job first. On a failure the save is dropped.
  std::optional<std::filesystem::path> advance(Communicator& world, bool block);
  std::optional<std::filesystem::path> guarded_advance(Communicator& world, bool block);
  void launch(std::function<std::string()> job);
  // On the thread: runs the snapshot copy and releases wait_until_copied. Returns its error.
  std::string run_copy(const std::function<void()>& copy);
  void join();

  std::unique_ptr<CheckpointSave> save_;
  std::function<void()> after_commit_;
  Phase phase_ = Phase::Writing;
  std::thread thread_;
  std::atomic<bool> job_done_{false};
  std::mutex copy_mutex_;
  std::condition_variable copy_cv_;
  bool copied_ = true;     // under copy_mutex_
  std::string job_error_;  // what the last job returned; read after join()
};

}  // namespace shardlm
