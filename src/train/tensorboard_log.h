// TensorBoard event files, written without TensorFlow: RUN_DIR/tensorboard/events.out.tfevents.*
// holds one Event per logged record, each a TFRecord (length, masked CRC32C of the length,
// payload, masked CRC32C of the payload) whose payload is a hand-encoded protobuf:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// (tensorboard/compat/proto/event.proto and summary.proto). Every start opens a new file;
// TensorBoard reads all files of the folder as one run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace shardlm {

using Scalars = std::vector<std::pair<std::string, double>>;  // tag -> value

class TensorBoardLog {
 public:
  // Creates `dir` and a new event file in it (its first event names the format version). With
  // an empty `dir` it writes nothing. Throws naming the path when it cannot.
  explicit TensorBoardLog(const std::filesystem::path& dir);

  // One event at `step` with a simple_value (a float, as TensorBoard stores it) per scalar;
  // flushed to the OS right away.
  void scalars(int64_t step, const Scalars& values);
  // Makes what was written durable (fsync), e.g. with every checkpoint.
  void sync();

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::filesystem::path path_;
  std::ofstream file_;
};

// The TFRecord framing's checksum: CRC32C rotated right by 15 bits plus 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n_bytes);

}  // namespace shardlm
