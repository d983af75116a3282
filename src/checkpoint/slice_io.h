// Reading and writing one stored rectangle (a tensor dataset of a rank or consolidated file):
// dataset creation, its attributes, and the bounded streaming pass that checks its checksum.
// Internal to src/checkpoint.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/h5.h"
#include "checkpoint/rect.h"

namespace shardlm {

// Streaming passes move at most this many elements at a time (4 MiB of fp32).
inline constexpr int64_t kStreamBlockElements = int64_t{1} << 20;

// "/param/h.0.ln_1.weight"
std::string slice_dataset_path(const std::string& role, const std::string& name);

// Creates the dataset `path` (under the group /<role>, created if needed) as a contiguous fp32
// dataset of `dims`.
h5::Handle create_tensor_dataset(hid_t file, const std::string& role, const std::string& path,
                                 const std::vector<int64_t>& dims);
// The attributes that make a dataset self-describing: global_shape, offset, checksum.
void write_slice_attributes(hid_t dataset, const std::vector<int64_t>& global_shape,
                            const std::vector<int64_t>& offset, uint32_t checksum);

// Throws if the dataset's extent or attributes disagree with the manifest's record.
void check_slice_attributes(hid_t dataset, const StoredSlice& slice);

// Reads the whole stored rectangle in row-major blocks of at most kStreamBlockElements,
// calling on_block(block in global coordinates, its data) for each, and throws if the CRC32C
// of all blocks differs from slice.checksum. Blocks land in `buffer` (reused scratch space), or,
// when slice_dest is given, straight in slice_dest ([slice.numel()], row-major over the slice).
void stream_slice(hid_t dataset, const StoredSlice& slice, std::vector<float>& buffer,
                  const std::function<void(const Rect& block, const float* data)>& on_block,
                  float* slice_dest = nullptr);

// "<dir>/rank_00002.h5: tensor param/wte: " (plus the dataset when it is not the tensor's
// first) — the prefix of every per-slice error.
std::string slice_context(const std::filesystem::path& dir, const StoredSlice& slice);

// Empty if the rank file of `rank` exists with the size the manifest records, else what is wrong
// with it (naming the file and the tensors it should hold).
std::string rank_file_problem(const std::filesystem::path& dir,
                              const std::vector<StoredSlice>& slices, int rank,
                              int64_t expected_bytes);

}  // namespace shardlm
