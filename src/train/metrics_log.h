// The metrics of a run as JSON Lines (--metrics, default <out>/metrics.jsonl), appended across
// starts. One object per logged step:
//   {"step","loss","lr","grad_norm","tokens","tokens_per_s","mfu","elapsed_s"[,"skipped":true],
//    "peak_alloc_bytes":[per world rank],"peak_alloc_bytes_by_role":{"parameters":[per rank],..}}
// and one per evaluation: {"step","val_loss"[,"val_bpb"]}. Numbers are written in full
// precision (the shortest text that reads back as the same double; lr as the same float), so
// two runs compare bit for bit from their metrics; NaN and infinities, which JSON lacks, are
// null.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "kernels/memory_account.h"

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
  bool skipped = false;  // non-finite, no update (--on-nan skip)
  // The backend allocator's peak so far, per world rank (kernels/memory_account.h).
  std::vector<MemoryTotals> peak_alloc;
};

class MetricsLog {
 public:
  // Appends to `path`; with an empty path it writes nothing (every rank but rank 0). Throws
  // naming the path when it cannot be opened.
  explicit MetricsLog(const std::filesystem::path& path);

  void step(const StepMetrics& m);
  void eval(int step, double val_loss, std::optional<double> val_bpb);

 private:
  void write(const std::string& line);
  std::ofstream file_;
};

}  // namespace shardlm
