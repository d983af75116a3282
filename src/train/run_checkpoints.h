// The checkpoints of a run: where it starts (--resume: fresh, the newest checkpoint of the run,
// or a given one saved with any layout) and the saves it makes (each one committed with the
// effective config and the tokenizer, then the retention rule applied).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "train/progress_printer.h"
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
                 const Tokenizer* tokenizer, int keep_last, int keep_every,
                 const ProgressPrinter& out);

  // --resume "auto" (the newest committed checkpoint under root, if any), "none", or a path
  // that resolve_checkpoint() accepts (a checkpoint, a run directory or a checkpoint root). Loads
  // it into the trainer, refusing a checkpoint of another model, and returns where training
  // continues (step 0 when fresh).
  TrainingPosition resume(const std::string& resume);
  // --init-from: loads only the parameters of `source` (any layout; the model must be the
  // run's), for a run that did not resume. Throws naming the flag and the checkpoint.
  void init_from(const std::string& source);
  bool resumed() const { return last_saved_ >= 0; }  // resume() loaded a checkpoint

  // Collective. Saves a checkpoint of `pos` unless that step is already saved (the resume
  // point, or a save just made).
  void save(const TrainingPosition& pos);

 private:
  std::optional<std::filesystem::path> resume_source(const std::string& resume) const;

  Trainer& trainer_;
  std::filesystem::path root_;
  std::string config_text_;
  std::vector<uint8_t> tokenizer_model_;
  int keep_last_, keep_every_;
  const ProgressPrinter& out_;
  int last_saved_ = -1;
};

}  // namespace shardlm
