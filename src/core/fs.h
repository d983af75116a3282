// Durable file-system steps shared by checkpoints, run directories and heartbeats.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace shardlm {

// fsync a file or a directory (a directory's fsync makes renames and creations in it durable).
// Throws shardlm::Error naming the path.
void fsync_path(const std::filesystem::path& path);

// The commit step of every atomic file write: fsyncs the finished `tmp`, renames it over
// `path` and fsyncs the directory. For writers that produce the file themselves (token shards,
// HDF5 files); text goes through write_file_atomic. Throws shardlm::Error naming both paths.
void commit_file(const std::filesystem::path& tmp, const std::filesystem::path& path);

// The one atomic write: `text` goes to <path>.tmp, which is fsynced and renamed over `path`,
// then the directory is fsynced. A reader sees the old file or the new one, never a part.
// Throws shardlm::Error naming the path (the old file, if any, is left as it was).
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// An open std::FILE that closes itself, also when a constructor throws after opening it (a
// raw FILE* member leaked one descriptor per refused file: fuzz_safetensors ran out of them).
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using UniqueFile = std::unique_ptr<std::FILE, FileCloser>;

// The whole file; throws naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace shardlm
