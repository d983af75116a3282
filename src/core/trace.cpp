#include "core/trace.h"

#include <chrono>

namespace shardlm::trace {

namespace detail {
std::atomic<bool> recording{false};
}

namespace {
// The training thread's state (spans are opened there only, see trace.h).
std::vector<Event> g_events;
int g_step = 0;
int g_timed_depth = 0;  // open Comm/Pipeline spans
TimeTotals g_totals;
thread_local bool t_spans_ignored = false;  // a background thread's spans

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool always_timed(Kind kind) {
  return kind == Kind::Comm || kind == Kind::Pipeline;
}
}  // namespace

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::Kernel:
      return "kernel";
    case Kind::Comm:
      return "comm";
    case Kind::Pipeline:
      return "pipeline";
    case Kind::Checkpoint:
      return "checkpoint";
    case Kind::Step:
      return "step";
  }
  return "?";
}

void start_recording(int step) {
  g_events.clear();
  g_step = step;
  detail::recording.store(true, std::memory_order_relaxed);
}

void set_step(int step) {
  g_step = step;
}

std::vector<Event> stop_recording() {
  detail::recording.store(false, std::memory_order_relaxed);
  return std::move(g_events);
}

TimeTotals time_totals() {
  return g_totals;
}

void ignore_spans_on_this_thread() {
  t_spans_ignored = true;
}

void Span::begin() {
  if (t_spans_ignored) return;  // timed_ stays false: end() is never called
  const bool accounted = always_timed(kind_);
  timed_ = true;
  counts_ = accounted && g_timed_depth == 0;
  if (accounted) ++g_timed_depth;
  start_ns_ = now_ns();
}

void Span::end() {
  const int64_t end = now_ns();
  if (always_timed(kind_)) --g_timed_depth;
  if (counts_) {
    const double s = static_cast<double>(end - start_ns_) * 1e-9;
    (kind_ == Kind::Comm ? g_totals.comm_s : g_totals.pipeline_s) += s;
  }
  if (!recording()) return;
  // A kernel's name is its op already ("matmul_forward"); others read better with the group.
  const bool prefixed = group_ != nullptr && kind_ != Kind::Kernel;
  Event e{.name = prefixed ? std::string(group_) + "." + name_ : std::string(name_),
          .group = group_ ? group_ : "",
          .kind = kind_,
          .start_ns = start_ns_,
          .duration_ns = end - start_ns_,
          .bytes = bytes_,
          .peer = peer_,
          .step = g_step};
  g_events.push_back(std::move(e));
}

}  // namespace shardlm::trace
