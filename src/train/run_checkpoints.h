// The checkpoints of a run: where it starts (--resume: fresh, the newest checkpoint of the run,
// or a given one saved with any layout) and the saves it makes (each one committed with the
// effective config and the tokenizer, then the retention rule applied). With --async-save a save
// snapshots the state to host memory and writes it on a background thread (BackgroundSave)
// while training continues; poll() at every step boundary commits it once every rank is done.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "train/background_save.h"
#include "train/progress_printer.h"
#include "train/slice_snapshot.h"
#include "train/trainer.h"

namespace shardlm {

struct TrainingPosition {
  int step = 0;                   // optimizer steps done
  uint64_t samples_consumed = 0;  // global samples read (the data position)
};

class RunCheckpoints {
 public:
  // `root`: the run's checkpoints/ folder. `tokenizer` may be null (synthetic data).
  RunCheckpoints(Trainer& trainer, std::filesystem::path root, std::string config_text,
                 const Tokenizer* tokenizer, int keep_last, int keep_every, bool async_save,
                 const ProgressPrinter& out);
  ~RunCheckpoints();
  RunCheckpoints(const RunCheckpoints&) = delete;
  RunCheckpoints& operator=(const RunCheckpoints&) = delete;

  // --resume "auto" (the newest committed checkpoint under root, if any), "none", or a path
  // that resolve_checkpoint() accepts (a checkpoint, a run directory or a checkpoint root). Loads
  // it into the trainer, refusing a checkpoint of another model, and returns where training
  // continues (step 0 when fresh).
  TrainingPosition resume(const std::string& resume);
  // --init-from: loads only the parameters of `source` (any layout; the model must be the
  // run's, and a tokenizer it carries the dataset's), for a run that did not resume. Throws
  // naming the flag and the checkpoint.
  void init_from(const std::string& source);
  bool resumed() const { return last_saved_ >= 0; }  // resume() loaded a checkpoint

  // Collective. Saves a checkpoint of `pos` unless that step is already saved (the resume
  // point, or a save just made). With --async-save it first waits for the save in flight (one
  // at a time), then snapshots the state and returns while the snapshot is written.
  void save(const TrainingPosition& pos);
  // Collective, at every step boundary: advances the save in flight (--async-save), committing
  // it once every rank has written its file. Costs nothing when no save is in flight.
  void poll();
  // Collective: finishes and commits the save in flight, if any (before the run exits).
  void wait();

 private:
  void check_same_tokenizer(const std::filesystem::path& dir,
                            const std::vector<uint8_t>& theirs) const;
  std::optional<std::filesystem::path> resume_source(const std::string& resume) const;
  // What a save writes, pointing into the trainer's buffers (backend memory).
  std::vector<CheckpointSlice> state_slices();
  void save_now(const TrainingPosition& pos);
  // Whether the writer thread takes the snapshot copy (while the next step's forward and
  // backward run) rather than the training thread.
  bool snapshot_on_writer_thread();
  // The trainer's before-update hook: the snapshot must be complete before the state changes.
  void wait_for_snapshot();
  void start_background_save(const TrainingPosition& pos);
  // Runs `advance` (a poll or a wait of the background save), counting its time as the save's
  // stall and printing the save once it is committed.
  template <typename Advance>
  void advance_background_save(Advance advance);

  Trainer& trainer_;
  std::filesystem::path root_;
  std::string config_text_;
  std::vector<uint8_t> tokenizer_model_;
  int keep_last_, keep_every_;
  const ProgressPrinter& out_;
  int last_saved_ = -1;
  const bool async_;
  SliceSnapshot snapshot_;     // what the save in flight writes (--async-save)
  double started_s_ = 0;       // when the save in flight began
  double stalled_s_ = 0;       // how long the training thread spent on it so far
  BackgroundSave background_;  // last: its thread may run retention with the fields above
};

}  // namespace shardlm
