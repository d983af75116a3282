#include "train/trace_window.h"

#include <chrono>

#include "core/trace.h"
#include "train/trace_file.h"

namespace shardlm {

TraceWindow::TraceWindow(int first, int last, std::filesystem::path trace_dir, Mesh& mesh)
    : first_(first), last_(last), dir_(std::move(trace_dir)), mesh_(mesh) {}

TraceWindow::~TraceWindow() {
  if (open_) trace::stop_recording();  // an error unwound the loop: leave no recording on
}

void TraceWindow::before_step(int step) {
  trace::set_step(step);
  if (first_ == 0 || open_ || step < first_ || step > last_) return;
  // Rank 0's clock is the timeline's zero on every rank.
  int64_t origin = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  mesh_.world().broadcast(&origin, 1, DType::I64, 0);
  origin_ns_ = origin;
  recorded_first_ = step;
  open_ = true;
  trace::start_recording(step);
}

void TraceWindow::after_step(int step) {
  if (!open_) return;
  recorded_last_ = step;
  if (step >= last_) write();
}

void TraceWindow::finish() {
  if (open_) write();
}

void TraceWindow::write() {
  open_ = false;
  const std::vector<trace::Event> events = trace::stop_recording();
  const MeshShape& s = mesh_.sizes();
  TraceRank rank;
  rank.world_rank = mesh_.world_rank();
  rank.world_size = mesh_.world_size();
  rank.label = "rank " + std::to_string(rank.world_rank) + " (dp " +
               std::to_string(mesh_.dp_rank()) + "/" + std::to_string(s.dp) + ", tp " +
               std::to_string(mesh_.tp_rank()) + "/" + std::to_string(s.tp) + ", pp " +
               std::to_string(mesh_.pp_rank()) + "/" + std::to_string(s.pp) + ")";
  rank.origin_ns = origin_ns_;
  rank.first_step = recorded_first_;
  rank.last_step = recorded_last_;
  write_rank_trace(rank_trace_path(dir_, rank.world_rank), rank, events);
}

}  // namespace shardlm
