// safetensors files (https://huggingface.co/docs/safetensors, the format's README): an 8-byte
// little-endian header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets":
// [begin, end]}, ..., "__metadata__": {"format": "pt"}} padded with spaces to a multiple of 8,
// then the tensors' bytes, row-major little-endian, offsets relative to the end of the header.
// The writer streams: the header is known from the tensors' names, dtypes and shapes, so each
// tensor's bytes can be appended as they are produced. The reader validates the header against
// the file before any tensor is read and reads any row range of a tensor.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/fs.h"

namespace shardlm {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;     // F32, BF16 or F16 (what shardlm writes and reads)
  std::vector<int64_t> shape;   // row-major
  uint64_t begin = 0, end = 0;  // byte range in the data section
  int64_t numel() const;
};

// "F32" / "BF16" / "F16" and back; other safetensors dtypes are refused naming `where`.
const char* safetensors_dtype_name(DType dtype);
DType safetensors_dtype(const std::string& name, const std::string& where);

class SafetensorsWriter {
 public:
  // Writes <path>.tmp; finish() commits it to `path`. Tensors are written in `entries` order
  // (their byte ranges are assigned here).
  SafetensorsWriter(std::filesystem::path path, std::vector<SafetensorsEntry> entries,
                    const std::map<std::string, std::string>& metadata);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The next bytes of the current tensor (tensors in order; a tensor may come in pieces).
  void append(const void* bytes, size_t n);
  // Checks every tensor was written in full, fsyncs and renames into place.
  void finish();
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  // Bytes of the whole file.
  uint64_t file_size() const;

 private:
  std::filesystem::path path_, tmp_;
  std::vector<SafetensorsEntry> entries_;
  uint64_t header_bytes_ = 0, written_ = 0;
  std::FILE* file_ = nullptr;
};

class SafetensorsReader {
 public:
  // Refuses, naming the file and the field: a file shorter than its header, a header that is
  // not JSON or not an object of tensors, an unknown dtype, a shape whose size disagrees with
  // data_offsets, overlapping ranges or ranges past the end of the file (truncated).
  explicit SafetensorsReader(std::filesystem::path path);
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr where the file has no such tensor.
  const SafetensorsEntry* find(const std::string& name) const;
  // dest: elements [first, first + n) of the tensor (row-major), as f32.
  void read(const SafetensorsEntry& entry, int64_t first, int64_t n, float* dest) const;

 private:
  std::filesystem::path path_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_start_ = 0;
  UniqueFile file_;
};

}  // namespace shardlm
