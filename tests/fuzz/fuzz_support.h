// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp): a private scratch folder for the
// readers that take a path, and the one rule every harness checks: a reader given any bytes
// either accepts them or throws shardlm::Error (which the CLI prints, naming the file). Any
// other exception, a sanitizer report, a signal or a file descriptor left open is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

// The process's open file descriptors.
inline size_t open_descriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Runs `read`; a shardlm::Error is the clean refusal, anything else escapes to libFuzzer. A
// descriptor still open afterwards aborts: the SafetensorsReader constructor once leaked its
// FILE on every refusal, and the fuzzer only died at exit, out of descriptors.
template <typename F>
void accept_or_refuse(F&& read) {
  const size_t before = open_descriptors();
  try {
    read();
  } catch (const shardlm::Error&) {
  }
  if (open_descriptors() > before) {
    std::fprintf(stderr, "the reader left a file descriptor open\n");
    std::abort();
  }
}

}  // namespace shardlm::fuzz
