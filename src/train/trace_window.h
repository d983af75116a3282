// --trace-steps A:B: records the training steps A..B (1-based, inclusive: the steps that
// metrics.jsonl logs as "step": A..B) on every rank, with the evaluation and checkpoint save
// that follow them, and writes RUN_DIR/trace/rank-RRRRR.json per rank when the window closes
// (train/trace_file.h). Outside the window nothing is recorded (core/trace.h).
#pragma once

#include <filesystem>

#include "parallel/mesh.h"

namespace shardlm {

class TraceWindow {
 public:
  // first == 0: no window.
  TraceWindow(int first, int last, std::filesystem::path trace_dir, Mesh& mesh);
  ~TraceWindow();

  // Before step `step` (1-based) runs. Collective when it opens the window (the ranks agree
  // on the origin of the timeline).
  void before_step(int step);
  // After step `step` and what follows it (evaluation, save): closes the window after B.
  void after_step(int step);
  // At the end of the run: writes what was recorded if the window is still open.
  void finish();

 private:
  void write();
  int first_, last_;
  std::filesystem::path dir_;
  Mesh& mesh_;
  bool open_ = false;
  int64_t origin_ns_ = 0;
  int recorded_first_ = 0, recorded_last_ = 0;
};

}  // namespace shardlm
