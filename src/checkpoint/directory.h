// File-system steps of the atomic checkpoint commit, and discovery of committed checkpoints.
// Internal to src/checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/fs.h"

namespace shardlm {

inline constexpr const char* kLatestFileName = "latest";

// The step of a committed-checkpoint directory name "step_XXXXXXXX" (exactly 8 digits), else
// nullopt (so step_X.tmp and anything else is never taken for a checkpoint).
std::optional<int64_t> parse_checkpoint_dir_name(const std::string& name);
// Removes every *.tmp entry directly under root (left by interrupted saves and retention).
void remove_tmp_entries(const std::filesystem::path& root);
// The directory name `latest` holds (trimmed), or nullopt when it is missing or unreadable.
std::optional<std::string> read_latest_pointer(const std::filesystem::path& root);

}  // namespace shardlm
