// A run directory (--out): run_config.ini, checkpoints/, progress/ (metrics.jsonl and
// launcher.log are written by their own owners). One run lives in it: the config is written at
// the first start and never rewritten, and a start with another model is refused, because its
// checkpoints would not load. progress/rank_<k>.txt is each rank's heartbeat, which the
// launcher's hang detector reads (docs/launcher.md).
#pragma once

#include <filesystem>
#include <string>

#include "model/config.h"
#include "parallel/comm.h"

namespace shardlm {

class RunDirectory {
 public:
  // Collective over `world`. Every rank refuses (Error naming the directory and the fields that
  // differ) a directory whose run_config.ini records another model than `model`; then rank 0
  // creates the folders and writes `config_text` as run_config.ini unless one is there.
  RunDirectory(std::filesystem::path root, const std::string& config_text, const ModelConfig& model,
               Communicator& world);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path checkpoints() const { return root_ / "checkpoints"; }
  std::filesystem::path config_file() const { return root_ / "run_config.ini"; }

  // Rewrites this rank's progress file ("step=<n> time=<unix seconds> host=<hostname>"),
  // atomically.
  void heartbeat(int step) const;

 private:
  std::filesystem::path root_;
  int rank_;
};

}  // namespace shardlm
