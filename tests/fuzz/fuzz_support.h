// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp): a private scratch folder for the
// readers that take a path, and the one rule every harness checks: a reader given any bytes
// either accepts them or throws shardlm::Error (which the CLI prints, naming the file). Any
// other exception, a sanitizer report or a signal is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"

namespace shardlm::fuzz {

// $TMPDIR/shardlm-fuzz-<pid>/, made once per process.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto d =
        std::filesystem::path(tmp ? tmp : "/tmp") / ("shardlm-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes the fuzzer's bytes to scratch_dir()/name and returns the path.
inline std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t n) {
  const auto path = scratch_dir() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  return path;
}

// Runs `read`; a shardlm::Error is the clean refusal, anything else escapes to libFuzzer.
template <typename F>
void accept_or_refuse(F&& read) {
  try {
    read();
  } catch (const shardlm::Error&) {
  }
}

}  // namespace shardlm::fuzz
