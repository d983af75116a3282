// Chrome trace-event JSON (the "JSON Object Format" that Perfetto and chrome://tracing open):
//   {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}
// One file per rank (RUN_DIR/trace/rank-RRRRR.json), each event a complete event
//   {"name","cat","ph":"X","ts","dur","pid":<world rank>,"tid":0,"args":{"step",...}}
// with ts/dur in microseconds since the window's origin (rank 0's clock when recording
// started, shared by all ranks), so the ranks' files line up; merge_trace_files puts them into
// one timeline. docs/observability.md describes the events.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/trace.h"

namespace shardlm {

struct TraceRank {
  int world_rank = 0;
  int world_size = 1;
  std::string label;  // "rank 3 (dp 0, tp 1, pp 1)"
  int64_t origin_ns = 0;
  int first_step = 0, last_step = 0;  // the steps recorded (1-based, as metrics.jsonl counts)
};

// RUN_DIR/trace/rank-00003.json.
std::filesystem::path rank_trace_path(const std::filesystem::path& trace_dir, int world_rank);

// Writes one rank's events (atomically, core/fs). Throws naming the path.
void write_rank_trace(const std::filesystem::path& path, const TraceRank& rank,
                      const std::vector<trace::Event>& events);

// The rank files to merge from `inputs`: files as given, folders by their rank-*.json.
std::vector<std::filesystem::path> find_rank_traces(
    const std::vector<std::filesystem::path>& inputs);

// Merges rank files of one trace window into one timeline at `out`; returns the event count.
// Throws naming the file that is not a shardlm rank trace, is not JSON, repeats a rank or comes
// from another window (another origin).
size_t merge_trace_files(const std::vector<std::filesystem::path>& rank_files,
                         const std::filesystem::path& out);

}  // namespace shardlm
