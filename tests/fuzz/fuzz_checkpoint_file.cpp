// libFuzzer: one file of a committed checkpoint (FUZZ_FILE: manifest.h5 or rank_00000.h5),
// the rest taken from the seed checkpoint SHARDLM_FUZZ_CHECKPOINT_DIR (tests/fuzz/checkpoint).
// `shardlm ckpt verify` must accept the seed's own bytes and refuse every other content with a
// shardlm::Error: the whole-file checksums (checkpoint/file_checksums.h) keep changed bytes
// away from HDF5, and accepting a changed file is a finding too.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "checkpoint/checkpoint.h"
#include "core/fs.h"
#include "fuzz_support.h"

namespace {

namespace fs = std::filesystem;

const fs::path& checkpoint_copy() {
  static const fs::path dir = [] {
    const fs::path d = shardlm::fuzz::scratch_dir() / "step_00000002";
    fs::remove_all(d);
    fs::copy(SHARDLM_FUZZ_CHECKPOINT_DIR, d, fs::copy_options::recursive);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string seed =
      shardlm::read_file(fs::path(SHARDLM_FUZZ_CHECKPOINT_DIR) / FUZZ_FILE);
  const fs::path dir = checkpoint_copy();
  shardlm::fuzz::write_input("input", data, size);
  fs::copy_file(shardlm::fuzz::scratch_dir() / "input", dir / FUZZ_FILE,
                fs::copy_options::overwrite_existing);
  const bool same = size == seed.size() && std::memcmp(data, seed.data(), size) == 0;
  bool accepted = false;
  shardlm::fuzz::accept_or_refuse([&] {
    (void)shardlm::verify_checkpoint(dir);
    accepted = true;
  });
  if (accepted != same) std::abort();  // a changed file accepted, or the seed refused
  return 0;
}
