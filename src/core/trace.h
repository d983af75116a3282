// The tracing seam: timed spans that kernels, communicators, the pipeline and checkpoint I/O
// open with one line (`trace::Span span("matmul_forward", trace::Kind::Kernel, 0, -1, "matmul")`).
//
// Two uses share it:
// - Recording (--trace-steps A:B): between start_recording() and stop_recording() every span
//   becomes a Chrome trace event kept in memory (train/trace_file.h writes them). Outside that
//   window a Kernel or Checkpoint span costs one relaxed load and a branch, nothing else.
// - The step-time split: Comm and Pipeline spans are always timed (two clock reads around a
//   call that moves data between ranks) and their time is added to time_totals(). Only the
//   outermost such span counts, so a communicator call inside a pipeline receive is bubble, not
//   communication.
// Spans are opened and closed on the training thread (kernels parallelise inside a span); a
// background thread (--async-save's writer) turns its own spans off with
// ignore_spans_on_this_thread(), since the state they would update is the training thread's.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::trace {

enum class Kind : uint8_t {
  Kernel,      // one kernel call; group = its op family (its kernels/cpu/ file)
  Comm,        // one communicator call; group = "tp", "dp", "pp", "world"; bytes moved
  Pipeline,    // a pipeline send/receive (waiting for the neighbour stage included)
  Checkpoint,  // checkpoint I/O
  Step,        // one training step, or a phase of one (set by the trainer)
};
const char* kind_name(Kind kind);  // the trace event's category: "kernel", "comm", ...

struct Event {
  std::string name;   // a kernel's op ("matmul_forward"), else "<group>.<name>" ("tp.all_reduce")
  std::string group;  // the op family or communicator; empty: none
  Kind kind;
  int64_t start_ns;  // system clock (the ranks of a node share it)
  int64_t duration_ns;
  uint64_t bytes;  // 0: none
  int peer;        // -1: none (a point-to-point call's other rank in its group)
  int step;        // the training step (0-based) it belongs to
};

namespace detail {
extern std::atomic<bool> recording;
}
inline bool recording() {
  return detail::recording.load(std::memory_order_relaxed);
}

// Starts keeping events, labelled `step` until set_step changes it.
void start_recording(int step);
void set_step(int step);
// Stops and hands over what was recorded.
std::vector<Event> stop_recording();

// Seconds spent in outermost Comm and Pipeline spans since the process started.
struct TimeTotals {
  double comm_s = 0;
  double pipeline_s = 0;
};
TimeTotals time_totals();

// From now on, spans opened on the calling thread neither time nor record anything.
void ignore_spans_on_this_thread();

class Span {
 public:
  // `name` and `group` must outlive the span (string literals, a communicator's name).
  // Inline, so that a span that records nothing costs a load and a branch at the call site.
  Span(const char* name, Kind kind, uint64_t bytes = 0, int peer = -1, const char* group = nullptr)
      : name_(name), group_(group), bytes_(bytes), peer_(peer), kind_(kind) {
    if (kind == Kind::Comm || kind == Kind::Pipeline || recording()) begin();
  }
  ~Span() {
    if (timed_) end();
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  void begin();
  void end();
  const char* name_;
  const char* group_;
  uint64_t bytes_;
  int64_t start_ns_ = 0;
  int peer_;
  Kind kind_;
  bool timed_ = false;
  bool counts_ = false;  // the outermost Comm/Pipeline span: adds to time_totals()
};

}  // namespace shardlm::trace
