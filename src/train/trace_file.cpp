#include "train/trace_file.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

constexpr const char* kRankFilePrefix = "rank-";

ordered_json metadata_event(const char* name, int pid, const ordered_json& args) {
  return {{"name", name}, {"ph", "M"}, {"pid", pid}, {"tid", 0}, {"args", args}};
}

ordered_json complete_event(const trace::Event& e, const TraceRank& rank) {
  ordered_json args = {{"step", e.step}};
  if (e.bytes != 0) args["bytes"] = e.bytes;
  if (e.peer >= 0) args["peer"] = e.peer;
  if (!e.group.empty()) args[e.kind == trace::Kind::Kernel ? "family" : "group"] = e.group;
  return {{"name", e.name},
          {"cat", trace::kind_name(e.kind)},
          {"ph", "X"},
          {"ts", static_cast<double>(e.start_ns - rank.origin_ns) * 1e-3},
          {"dur", static_cast<double>(e.duration_ns) * 1e-3},
          {"pid", rank.world_rank},
          {"tid", 0},
          {"args", args}};
}

ordered_json read_rank_trace(const fs::path& path) {
  ordered_json j;
  try {
    j = ordered_json::parse(read_file(path));
  } catch (const ordered_json::exception& e) {
    fail(path.string() + " is not JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("traceEvents") || !j["traceEvents"].is_array() ||
      !j.contains("otherData") || !j["otherData"].contains("shardlm_rank"))
    fail(path.string() +
         " is not a shardlm rank trace (no traceEvents, or no "
         "otherData.shardlm_rank): pass the files of RUN_DIR/trace/");
  return j;
}

}  // namespace

fs::path rank_trace_path(const fs::path& trace_dir, int world_rank) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%05d.json", kRankFilePrefix, world_rank);
  return trace_dir / name;
}

void write_rank_trace(const fs::path& path, const TraceRank& rank,
                      const std::vector<trace::Event>& events) {
  ordered_json list = ordered_json::array();
  list.push_back(metadata_event("process_name", rank.world_rank, {{"name", rank.label}}));
  list.push_back(
      metadata_event("process_sort_index", rank.world_rank, {{"sort_index", rank.world_rank}}));
  list.push_back(metadata_event("thread_name", rank.world_rank, {{"name", "training thread"}}));
  for (const trace::Event& e : events) list.push_back(complete_event(e, rank));
  const ordered_json doc = {
      {"traceEvents", list},
      {"displayTimeUnit", "ms"},
      {"otherData",
       {{"shardlm_rank", rank.world_rank},
        {"world_size", rank.world_size},
        {"origin_unix_ns", rank.origin_ns},
        {"steps", std::to_string(rank.first_step) + ":" + std::to_string(rank.last_step)}}}};
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    fail("cannot create the trace folder " + path.parent_path().string() + ": " + ec.message());
  write_file_atomic(path, doc.dump());
}

std::vector<fs::path> find_rank_traces(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> files;
  for (const fs::path& in : inputs) {
    if (!fs::is_directory(in)) {
      if (!fs::exists(in)) fail("trace file " + in.string() + " does not exist");
      files.push_back(in);
      continue;
    }
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(in)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(kRankFilePrefix, 0) == 0 && entry.path().extension() == ".json")
        found.push_back(entry.path());
    }
    if (found.empty())
      fail(in.string() +
           " holds no rank-*.json trace files (a run writes them into "
           "RUN_DIR/trace/ with --trace-steps A:B)");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

size_t merge_trace_files(const std::vector<fs::path>& rank_files, const fs::path& out) {
  SHARDLM_CHECK(!rank_files.empty(), "merge_trace_files needs at least one file");
  ordered_json merged = ordered_json::array();
  std::map<int, fs::path> seen;  // world rank -> its file
  ordered_json first_other;
  for (const fs::path& path : rank_files) {
    ordered_json doc = read_rank_trace(path);
    const ordered_json& other = doc["otherData"];
    const int rank = other["shardlm_rank"].get<int>();
    if (const auto it = seen.find(rank); it != seen.end())
      fail(path.string() + " and " + it->second.string() + " are both rank " +
           std::to_string(rank));
    seen[rank] = path;
    if (first_other.is_null()) {
      first_other = other;
    } else if (other.value("origin_unix_ns", int64_t{0}) !=
               first_other.value("origin_unix_ns", int64_t{0})) {
      fail(path.string() + " comes from another trace window than " + rank_files.front().string() +
           " (different origin_unix_ns): merge one run's files");
    }
    for (auto& e : doc["traceEvents"]) merged.push_back(std::move(e));
  }
  const ordered_json doc = {{"traceEvents", merged},
                            {"displayTimeUnit", "ms"},
                            {"otherData",
                             {{"ranks", seen.size()},
                              {"world_size", first_other.value("world_size", 0)},
                              {"origin_unix_ns", first_other.value("origin_unix_ns", int64_t{0})},
                              {"steps", first_other.value("steps", "")}}}};
  write_file_atomic(out, doc.dump());
  return merged.size();
}

}  // namespace shardlm
