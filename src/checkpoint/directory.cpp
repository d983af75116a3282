// Checkpoint directories on disk: durable writes, the `latest` pointer, discovery, retention.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/directory.h"
#include "checkpoint/manifest.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

bool is_committed(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kManifestFileName, ec);
}

}  // namespace

std::optional<int64_t> parse_checkpoint_dir_name(const std::string& name) {
  if (name.size() != 13 || name.compare(0, 5, "step_") != 0) return std::nullopt;
  if (!std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return parse_int64("checkpoint directory name", std::string_view(name).substr(5));
}

void remove_tmp_entries(const fs::path& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.ends_with(".tmp")) fs::remove_all(entry.path(), ec);
  }
}

std::optional<std::string> read_latest_pointer(const fs::path& root) {
  std::ifstream in(root / kLatestFileName);
  if (!in) return std::nullopt;
  std::string name;
  in >> name;  // one token: the directory name
  if (name.empty()) return std::nullopt;
  return name;
}

std::string checkpoint_dir_name(int64_t step) {
  SHARDLM_CHECK(step >= 0 && step <= 99999999,
                "checkpoint step " + std::to_string(step) + " does not fit 8 digits");
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::vector<int64_t> list_checkpoints(const fs::path& root) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto step = parse_checkpoint_dir_name(entry.path().filename().string());
    if (step && is_committed(entry.path())) steps.push_back(*step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& root) {
  if (const auto pointer = read_latest_pointer(root)) {
    if (parse_checkpoint_dir_name(*pointer) && is_committed(root / *pointer))
      return root / *pointer;
  }
  const auto steps = list_checkpoints(root);
  if (steps.empty()) return std::nullopt;
  return root / checkpoint_dir_name(steps.back());
}

fs::path resolve_checkpoint(const fs::path& path) {
  if (!fs::exists(path)) fail("checkpoint path " + path.string() + " does not exist");
  // The commit is the rename of step_X.tmp to step_X: a *.tmp directory, manifest or not, is a
  // save that did not finish.
  if (path.filename().string().ends_with(".tmp"))
    fail(path.string() + " is not a committed checkpoint: a save that did not finish (*.tmp)");
  if (is_committed(path)) return path;
  const fs::path run_root = path / "checkpoints";
  for (const fs::path& root : {run_root, path})
    if (fs::is_directory(root))
      if (const auto latest = find_latest_checkpoint(root)) return *latest;
  fail(path.string() +
       " is neither a checkpoint (no manifest.h5) nor a run directory or checkpoint root with a "
       "committed checkpoint (looked in " +
       run_root.string() + " and " + path.string() + ")");
}

std::vector<fs::path> apply_retention(const fs::path& root, int keep_last, int64_t keep_every) {
  SHARDLM_CHECK(keep_last >= 0, "keep_last must be >= 0, got " + std::to_string(keep_last));
  SHARDLM_CHECK(keep_every >= 0, "keep_every must be >= 0, got " + std::to_string(keep_every));
  const auto steps = list_checkpoints(root);
  const auto latest = read_latest_pointer(root);
  std::vector<fs::path> deleted;
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool recent = i + static_cast<size_t>(keep_last) >= steps.size();
    const bool milestone = keep_every > 0 && steps[i] % keep_every == 0;
    const std::string name = checkpoint_dir_name(steps[i]);
    if (recent || milestone || (latest && *latest == name)) continue;
    // Rename first so that a crash mid-delete never leaves a half-deleted directory that
    // still looks committed; *.tmp leftovers go with the next save.
    const fs::path dir = root / name;
    fs::path doomed = dir;
    doomed += ".deleting.tmp";
    std::error_code ec;
    fs::rename(dir, doomed, ec);
    if (ec)
      fail("retention: cannot rename " + dir.string() + " to " + doomed.string() + ": " +
           ec.message());
    fsync_path(root);
    fs::remove_all(doomed, ec);
    if (ec) fail("retention: cannot delete " + doomed.string() + ": " + ec.message());
    deleted.push_back(dir);
  }
  return deleted;
}

}  // namespace shardlm
