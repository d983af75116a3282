// Shared by the checkpoint tests (unit and MPI): tensors whose every element is a distinct,
// exactly representable function of its global position, so any misplaced element shows; a
// scratch directory; damage done to a file through the bare HDF5 API.
#pragma once

#include <hdf5.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint/file_checksums.h"
#include "checkpoint/manifest.h"

namespace shardlm::testing {

// A fresh directory under the system's temp directory, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "shardlm-ckpt-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Makes `dir` a checkpoint as written before whole-file checksums (no manifest.crc32c, no
// /files/crc32c): a test can then damage a file in ways that only the inner checks catch (the
// tensors' and the manifest's own checksums, the format checks), which old checkpoints rely on.
inline void drop_whole_file_checksums(const std::filesystem::path& dir) {
  Manifest m = read_manifest(dir / kManifestFileName);
  for (auto& f : m.files) f.crc32c.reset();
  write_manifest(dir / kManifestFileName, m);
  std::filesystem::remove(dir / kManifestSidecarName);
}

// File offset of a contiguous dataset's data, through the plain HDF5 API.
inline haddr_t data_offset(const std::filesystem::path& file, const std::string& dataset) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const haddr_t offset = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  return offset;
}

inline void flip_byte(const std::filesystem::path& file, uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// seed in [1, 9], tensors under 7M elements: seed * 1e6 + flat index stays below 2^24, so every
// value is an exact float and two positions (or two seeds) never share one.
inline float element_value(int seed, int64_t flat_index) {
  return static_cast<float>(seed * 1000000 + flat_index);
}

// The rectangle (offset, count) of the seeded tensor of `global_shape`, row-major.
inline std::vector<float> make_block(int seed, const std::vector<int64_t>& global_shape,
                                     const std::vector<int64_t>& offset,
                                     const std::vector<int64_t>& count) {
  const size_t ndim = global_shape.size();
  int64_t n = 1;
  for (int64_t c : count) n *= c;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(n));
  std::vector<int64_t> index(ndim, 0);  // position inside the rectangle
  for (int64_t i = 0; i < n; ++i) {
    int64_t flat = 0;
    for (size_t d = 0; d < ndim; ++d) flat = flat * global_shape[d] + offset[d] + index[d];
    out.push_back(element_value(seed, flat));
    for (size_t d = ndim; d-- > 0;) {
      if (++index[d] < count[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

inline std::vector<float> make_tensor(int seed, const std::vector<int64_t>& global_shape) {
  return make_block(seed, global_shape, std::vector<int64_t>(global_shape.size(), 0), global_shape);
}

}  // namespace shardlm::testing
