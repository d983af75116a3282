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

// Whether tensors can be stored as `dtype` (F32, BF16, F16).
bool is_stored_dtype(DType dtype);
// The format_version a file holding a tensor of `dtype` needs (checkpoint.h): 1 for F32, else 2.
int64_t format_version_for(DType dtype);

// "/param/h.0.ln_1.weight"
std::string slice_dataset_path(const std::string& role, const std::string& name);

// Creates the dataset `path` (under the group /<role>, created if needed) as a contiguous
// dataset of `dims` in h5::tensor_type(dtype).
h5::Handle create_tensor_dataset(hid_t file, const std::string& role, const std::string& path,
                                 const std::vector<int64_t>& dims, DType dtype);
// Writes the rectangle `block` (coordinates within the dataset) from `data`, block.numel()
// elements of `dtype` as raw bits (no conversion), and returns crc32c_update(crc, those bytes).
// Writers go block by block (for_each_block, kStreamBlockElements) so that each block is
// checksummed while it is in cache: one huge pwrite per tensor ran at half the page cache's
// speed (docs/performance.md).
uint32_t write_block(hid_t dataset, const Rect& block, DType dtype, const void* data, uint32_t crc);
// The attributes that make a dataset self-describing: global_shape, offset, checksum, dtype.
void write_slice_attributes(hid_t dataset, const std::vector<int64_t>& global_shape,
                            const std::vector<int64_t>& offset, uint32_t checksum, DType dtype);

// Throws if the dataset's extent, type or attributes disagree with the manifest's record.
void check_slice_attributes(hid_t dataset, const StoredSlice& slice);

// Reads the whole stored rectangle in row-major blocks of at most kStreamBlockElements,
// calling on_block(block in global coordinates, its data as fp32) for each, and throws if the
// CRC32C of the stored bytes of all blocks differs from slice.checksum. Blocks land in `buffer`
// (reused scratch space), or, when slice_dest is given, straight in slice_dest ([slice.numel()],
// row-major over the slice).
void stream_slice(hid_t dataset, const StoredSlice& slice, std::vector<float>& buffer,
                  const std::function<void(const Rect& block, const float* data)>& on_block,
                  float* slice_dest = nullptr);

// Reads the part `piece` (global coordinates, inside the slice and `request`) of a stored slice
// as fp32 into dest, which is laid out row-major over `request`. No checksum: for slices that a
// stream_slice pass verified before.
void read_slice_piece(hid_t dataset, const StoredSlice& slice, const Rect& piece,
                      const Rect& request, float* dest);

// "<dir>/rank_00002.h5: tensor param/wte: " (plus the dataset when it is not the tensor's
// first) — the prefix of every per-slice error.
std::string slice_context(const std::filesystem::path& dir, const StoredSlice& slice);

// Empty if the rank file of `rank` exists with the size the manifest records, else what is wrong
// with it (naming the file and the tensors it should hold).
std::string rank_file_problem(const std::filesystem::path& dir,
                              const std::vector<StoredSlice>& slices, int rank,
                              int64_t expected_bytes);

}  // namespace shardlm
