#include "train/run_directory.h"

#include <ctime>

#include "core/error.h"
#include "core/fs.h"
#include "core/host_name.h"

namespace fs = std::filesystem;

namespace shardlm {

RunDirectory::RunDirectory(fs::path root, const std::string& config_text, const ModelConfig& model,
                           Communicator& world)
    : root_(std::move(root)), rank_(world.rank()) {
  // run_config.ini of any shardlm version has the [model] section that this compares.
  if (fs::exists(config_file())) {
    ModelConfig stored;
    try {
      stored = model_config_from_ini(read_file(config_file()));
    } catch (const Error& e) {
      fail(config_file().string() + ": " + e.what());
    }
    const std::string diff = model_config_diff(stored, model);
    if (!diff.empty())
      fail("run directory " + root_.string() + " holds a run with a different model (" + diff +
           "); use a new --out or the original model settings");
  }
  // Every rank has read the old file before rank 0 may create one.
  world.barrier();
  if (rank_ == 0) {
    fs::create_directories(checkpoints());
    fs::create_directories(root_ / "progress");
    if (!fs::exists(config_file())) write_file_atomic(config_file(), config_text);
  }
  world.barrier();
}

void RunDirectory::heartbeat(int step) const {
  write_file_atomic(root_ / "progress" / ("rank_" + std::to_string(rank_) + ".txt"),
                    "step=" + std::to_string(step) + " time=" + std::to_string(std::time(nullptr)) +
                        " host=" + host_name() + "\n");
}

}  // namespace shardlm
