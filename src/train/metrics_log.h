// The metrics of a run as JSON Lines (--metrics, default <out>/metrics.jsonl), appended across
// starts, and the same numbers as TensorBoard scalars (<out>/tensorboard/, unless
// --tensorboard off). One object per logged step:
//   {"step","loss","lr","grad_norm","tokens","tokens_per_s","mfu","elapsed_s","compute_s",
//    "comm_s","bubble_s","cpu_s","peak_mem_bytes"[,"skipped":true],
//    "peak_alloc_bytes":[per world rank],"peak_alloc_bytes_by_role":{"parameters":[per rank],..}}
// and one per evaluation: {"step","val_loss"[,"val_bpb"]}. Numbers are written in full
// precision (the shortest text that reads back as the same double; lr as the same float), so
// two runs compare bit for bit from their metrics; NaN and infinities, which JSON lacks, are
// null. docs/observability.md is the schema. TensorBoard tags: a step line's key K is
// "train/K", an evaluation's "val_K" is "val/K" (tensorboard_tag()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "kernels/memory_account.h"

#include "train/tensorboard_log.h"

namespace shardlm {

struct StepMetrics {
  int step = 0;  // steps done
  double loss = 0;
  float lr = 0;
  double grad_norm = 0;
  uint64_t tokens = 0;  // consumed so far
  double tokens_per_s = 0;
  double mfu = 0;
  double elapsed_s = 0;  // since this start's first step
  // The step-time split: per-step means over the steps since the last logged one, averaged
  // over the ranks (train/step_time_split.h); compute_s + comm_s + bubble_s is the step time.
  double compute_s = 0;
  double comm_s = 0;
  double bubble_s = 0;
  uint64_t peak_mem_bytes = 0;  // the largest rank's (train/peak_memory.h)
  bool skipped = false;         // non-finite, no update (--on-nan skip)
  // The backend allocator's peak so far, per world rank (kernels/memory_account.h).
  std::vector<MemoryTotals> peak_alloc;
  double cpu_s = 0;  // CPU seconds per step of a rank's process, averaged like the split
};

class MetricsLog {
 public:
  // Appends to `path` and, unless `tensorboard_dir` is empty, writes a new event file there;
  // with an empty path it writes nothing (every rank but rank 0). Throws naming the path when
  // it cannot be opened.
  explicit MetricsLog(const std::filesystem::path& path,
                      const std::filesystem::path& tensorboard_dir = {});

  void step(const StepMetrics& m);
  void eval(int step, double val_loss, std::optional<double> val_bpb);
  // fsync both files (with every checkpoint: a restored run's metrics reach its checkpoint).
  void sync();

 private:
  // One line, and its numbers as TensorBoard scalars at `step`.
  void write(const std::string& line, int step, const Scalars& scalars);
  std::filesystem::path path_;
  std::ofstream file_;
  TensorBoardLog tensorboard_;
};

// The TensorBoard tag of a metrics.jsonl key: "train/<key>" for a step line's, "val/<key
// without val_>" for an evaluation's.
std::string tensorboard_tag(const std::string& key, bool eval);

}  // namespace shardlm
