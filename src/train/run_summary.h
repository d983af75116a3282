// The lines that end a `shardlm train` start (done, or stopped to be requeued):
//   run summary: 2000 steps, 8192000 tokens in 4m12s | best val bpb 1.9321 (step 2000) |
//   mean MFU 12.3% | peak memory 1.21 GiB | newest checkpoint runs/x/checkpoints/step_00002000
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "train/metrics_log.h"

namespace shardlm {

class RunSummary {
 public:
  void step(const StepMetrics& m);  // every logged step of this start
  void eval(int step, double val_loss, std::optional<double> val_bpb);

  // `seconds`: this start's training time; `checkpoint`: the newest committed one, if any.
  std::string text(double seconds, const std::optional<std::filesystem::path>& checkpoint) const;

 private:
  int steps_ = 0;
  uint64_t tokens_ = 0;
  double mfu_sum_ = 0;
  int mfu_count_ = 0;
  uint64_t peak_mem_bytes_ = 0;
  // Best evaluation: lowest bits per byte (or loss when the data has no byte count).
  std::optional<double> best_;
  bool best_is_bpb_ = false;
  int best_step_ = 0;
};

}  // namespace shardlm
