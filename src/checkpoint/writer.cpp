// save_checkpoint and its phases (CheckpointSave): each rank writes its rectangles into
// step_X.tmp/rank_R.h5 straight from its own memory, rank 0 writes the manifest and commits by
// renames (docs/checkpoint-format.md).
#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_save.h"
#include "checkpoint/directory.h"
#include "checkpoint/file_checksums.h"
#include "checkpoint/h5.h"
#include "checkpoint/manifest.h"
#include "checkpoint/slice_io.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/trace.h"
#include "parallel/comm.h"

namespace shardlm {

namespace fs = std::filesystem;

// Checksums are defined over little-endian bytes and data is written from memory as is.
static_assert(std::endian::native == std::endian::little,
              "checkpoint I/O assumes a little-endian host");

namespace {

bool valid_key(const std::string& key) {
  return !key.empty() && key != "." && key != ".." && key.find('/') == std::string::npos;
}

// '@' separates a tensor's name from the index of a rank's further rectangles of it.
bool valid_tensor_name(const std::string& name) {
  return valid_key(name) && name.find('@') == std::string::npos;
}

void validate_slices(const std::vector<CheckpointSlice>& slices,
                     const std::vector<SliceSource>& sources) {
  if (!sources.empty() && sources.size() != slices.size())
    fail("checkpoint save: " + std::to_string(sources.size()) + " sources for " +
         std::to_string(slices.size()) + " slices");
  for (size_t i = 0; i < slices.size(); ++i) {
    const CheckpointSlice& s = slices[i];
    const std::string label = "checkpoint slice " + tensor_label(s.role, s.name) + ": ";
    if (s.role != kRoleParam && s.role != kRoleExpAvg && s.role != kRoleExpAvgSq)
      fail(label + "role must be param, exp_avg or exp_avg_sq");
    if (!valid_tensor_name(s.name))
      fail(label + "the tensor name must be non-empty and contain no '/' or '@'");
    const size_t ndim = s.global_shape.size();
    if (ndim == 0 || s.offset.size() != ndim || s.count.size() != ndim)
      fail(label + "global_shape " + shape_string(s.global_shape) + ", offset " +
           shape_string(s.offset) + " and count " + shape_string(s.count) +
           " must have the same number (>= 1) of dimensions");
    for (size_t d = 0; d < ndim; ++d)
      if (s.global_shape[d] < 1 || s.offset[d] < 0 || s.count[d] < 0 ||
          s.offset[d] + s.count[d] > s.global_shape[d])
        fail(label + "rectangle at " + shape_string(s.offset) + " of extent " +
             shape_string(s.count) + " does not fit in " + shape_string(s.global_shape));
    if (!is_stored_dtype(s.dtype))
      fail(label + "dtype " + dtype_name(s.dtype) + " cannot be stored (f32, bf16 or f16)");
    if (Rect{s.offset, s.count}.numel() == 0) continue;
    if (!s.data && (sources.empty() || !sources[i])) fail(label + "data is null");
  }
}

void validate_metadata(const Metadata& metadata, const char* which) {
  for (const auto& entry : metadata)
    if (!valid_key(entry.first))
      fail(std::string(which) + " key '" + entry.first + "' must be non-empty and contain no '/'");
}

// What `work` threw, or "" when it returned.
std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Agrees over `world` whether a phase worked on every rank (`error`: this rank's failure, or
// ""), so that a failure on one rank makes every rank throw instead of leaving the others in a
// collective.
void agree_on_phase(Communicator& world, int64_t step, const char* phase,
                    const std::string& error) {
  int32_t first_failed = error.empty() ? world.size() : world.rank();
  world.all_reduce(&first_failed, 1, DType::I32, ReduceOp::Min);
  if (!error.empty())
    throw Error("saving checkpoint step " + std::to_string(step) + " (" + phase + "): " + error);
  if (first_failed < world.size())
    fail("saving checkpoint step " + std::to_string(step) + " failed on rank " +
         std::to_string(first_failed) + " (" + phase + "); its message says why");
}

// The slice's elements, block by block: from its memory, or from its source into `scratch`.
const void* block_data(const CheckpointSlice& s, const SliceSource* source, int64_t first,
                       int64_t n, std::vector<uint8_t>& scratch) {
  const size_t element_bytes = dtype_size(s.dtype);
  if (s.data)
    return static_cast<const uint8_t*>(s.data) + static_cast<size_t>(first) * element_bytes;
  scratch.resize(static_cast<size_t>(n) * element_bytes);
  (*source)(first, n, scratch.data());
  return scratch.data();
}

// Writes and fsyncs this rank's file; returns what the manifest lists for it.
std::vector<StoredSlice> write_rank_h5(const fs::path& path, int rank, int world_size, int64_t step,
                                       const std::vector<CheckpointSlice>& slices,
                                       const std::vector<SliceSource>& sources,
                                       const Metadata& rank_metadata) {
  h5::Handle file = h5::create_file(path);
  h5::write_attr_string(file, "format", kCheckpointFormatName);
  h5::write_attr_i64(file, "step", step);
  h5::write_attr_i64(file, "rank", rank);
  h5::write_attr_i64(file, "world_size", world_size);
  h5::write_attr_string(file, "checksum_algorithm", "crc32c");
  h5::write_metadata(file, "metadata", rank_metadata);
  std::vector<StoredSlice> stored;
  std::map<std::pair<std::string, std::string>, int> rectangles_so_far;
  std::vector<uint8_t> scratch;  // one block of a sourced slice
  for (size_t i = 0; i < slices.size(); ++i) {
    const CheckpointSlice& s = slices[i];
    const SliceSource* source = sources.empty() ? nullptr : &sources[i];
    const int64_t numel = Rect{s.offset, s.count}.numel();
    if (numel == 0) continue;
    const int k = rectangles_so_far[{s.role, s.name}]++;
    std::string path = slice_dataset_path(s.role, s.name);
    if (k) path.append(1, '@').append(std::to_string(k));  // (not "@" + ...: GCC 12 -Wrestrict)
    h5::Handle dataset = create_tensor_dataset(file, s.role, path, s.count, s.dtype);
    uint32_t checksum = 0;
    int64_t done = 0;  // elements written: blocks come in the slice's row-major order
    for_each_block(Rect{std::vector<int64_t>(s.count.size(), 0), s.count}, kStreamBlockElements,
                   [&](const Rect& block) {
                     const void* data = block_data(s, source, done, block.numel(), scratch);
                     checksum = write_block(dataset, block, s.dtype, data, checksum);
                     done += block.numel();
                   });
    write_slice_attributes(dataset, s.global_shape, s.offset, checksum, s.dtype);
    stored.push_back(
        {rank, s.role, s.name, path, s.global_shape, s.offset, s.count, checksum, s.dtype});
  }
  // The oldest version that describes what this file holds (checkpoint.h).
  int64_t format_version = kCheckpointFormatVersion;
  for (const auto& s : stored)
    format_version = std::max(format_version, format_version_for(s.dtype));
  h5::write_attr_i64(file, "format_version", format_version);
  file.close_checked();
  fsync_path(path);
  return stored;
}

// Collective: every rank's slice records, file size and file CRC32C (all ranks get all; only
// rank 0 uses them).
GatheredRankFiles gather_rank_files(Communicator& world, const std::vector<StoredSlice>& mine,
                                    int64_t file_bytes, uint32_t file_crc) {
  const auto p = static_cast<size_t>(world.size());
  const std::vector<uint8_t> encoded = encode_slices(mine);
  const int64_t sizes_mine[3] = {static_cast<int64_t>(encoded.size()), file_bytes, file_crc};
  std::vector<int64_t> sizes(3 * p);
  world.all_gather(sizes_mine, sizes.data(), 3, DType::I64);
  int64_t longest = 0;
  for (size_t r = 0; r < p; ++r) longest = std::max(longest, sizes[3 * r]);
  std::vector<uint8_t> padded(static_cast<size_t>(longest), 0);
  std::copy(encoded.begin(), encoded.end(), padded.begin());
  std::vector<uint8_t> all(p * static_cast<size_t>(longest));
  world.all_gather(padded.data(), all.data(), static_cast<size_t>(longest), DType::U8);
  GatheredRankFiles out;
  for (size_t r = 0; r < p; ++r) {
    out.file_bytes.push_back(sizes[3 * r + 1]);
    out.file_crcs.push_back(static_cast<uint32_t>(sizes[3 * r + 2]));
    const auto begin = all.begin() + static_cast<ptrdiff_t>(r * static_cast<size_t>(longest));
    auto slices = decode_slices(std::vector<uint8_t>(begin, begin + sizes[3 * r]));
    for (auto& s : slices) {
      if (s.rank != static_cast<int>(r))
        fail("gathered slice records of rank " + std::to_string(r) + " name rank " +
             std::to_string(s.rank));
      out.slices.push_back(std::move(s));
    }
  }
  return out;
}

// Renames tmp_dir to final_dir. When final_dir is already a committed checkpoint (saving the
// step just resumed from), the two are swapped atomically where the file system can (Linux
// renameat2 RENAME_EXCHANGE), so step_X exists at every moment; the old one ends up in tmp_dir
// and goes with the *.tmp cleanup. Elsewhere the old one is moved aside first, and until the
// second rename discovery falls back to the newest other checkpoint.
void install_directory(const fs::path& tmp_dir, const fs::path& final_dir) {
  std::error_code ec;
  if (fs::exists(final_dir)) {
    if (::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0)
      return;
    if (errno != EINVAL && errno != ENOSYS)
      fail("cannot exchange " + tmp_dir.string() + " with " + final_dir.string() + ": " +
           std::strerror(errno));
    fs::path replaced = final_dir;
    replaced += ".replaced.tmp";
    fs::remove_all(replaced, ec);
    fs::rename(final_dir, replaced, ec);
    if (ec) fail("cannot move the existing " + final_dir.string() + " aside: " + ec.message());
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec)
    fail("cannot rename " + tmp_dir.string() + " to " + final_dir.string() + ": " + ec.message());
}

// Rank 0: manifest, rename into place, `latest`, cleanup. Each step is durable before the next.
void commit_checkpoint(const fs::path& root, const fs::path& tmp_dir, const fs::path& final_dir,
                       int64_t step, const GatheredRankFiles& gathered,
                       const CheckpointInfo& info) {
  Manifest manifest;
  for (const auto& s : gathered.slices)
    manifest.format_version = std::max(manifest.format_version, format_version_for(s.dtype));
  manifest.step = step;
  for (size_t r = 0; r < gathered.file_bytes.size(); ++r)
    manifest.files.push_back(
        {rank_file_name(static_cast<int>(r)), gathered.file_bytes[r], gathered.file_crcs[r]});
  manifest.slices = gathered.slices;
  manifest.config_text = info.config_text;
  manifest.tokenizer_model = info.tokenizer_model;
  manifest.metadata = info.metadata;
  const auto problems = check_slice_coverage(manifest.slices);
  if (!problems.empty()) {
    std::string text = "the ranks' rectangles do not describe complete tensors:";
    for (const auto& p : problems) text += "\n  " + p;
    fail(text);
  }
  write_manifest(tmp_dir / kManifestFileName, manifest);
  write_manifest_sidecar(tmp_dir / kManifestFileName);
  fsync_path(tmp_dir);  // the rank files' and the manifest's directory entries
  install_directory(tmp_dir, final_dir);
  fsync_path(root);
  write_file_atomic(root / kLatestFileName, final_dir.filename().string() + "\n");
  remove_tmp_entries(root);
}

}  // namespace

CheckpointSave::CheckpointSave(Communicator& world, fs::path root, int64_t step,
                               std::vector<CheckpointSlice> slices, CheckpointInfo info,
                               std::vector<SliceSource> sources)
    : root_(std::move(root)),
      tmp_dir_(root_ / (checkpoint_dir_name(step) + ".tmp")),
      final_dir_(root_ / checkpoint_dir_name(step)),
      step_(step),
      rank_(world.rank()),
      world_size_(world.size()),
      slices_(std::move(slices)),
      sources_(std::move(sources)),
      info_(std::move(info)) {
  agree_on_phase(world, step_, "preparing", error_of([&] {
                   validate_slices(slices_, sources_);
                   validate_metadata(info_.rank_metadata, "rank metadata");
                   if (!leader()) return;
                   validate_metadata(info_.metadata, "metadata");
                   std::error_code ec;
                   fs::create_directories(root_, ec);
                   if (ec)
                     fail("cannot create checkpoint root " + root_.string() + ": " + ec.message());
                   fs::remove_all(tmp_dir_, ec);  // left by an interrupted save of the same step
                   if (!fs::create_directory(tmp_dir_, ec) || ec)
                     fail("cannot create " + tmp_dir_.string() + ": " +
                          (ec ? ec.message() : "it already exists"));
                   // Its entry in root is fsynced by rank 0's write_rank_file, a local phase.
                 }));
}

std::string CheckpointSave::write_rank_file() {
  const fs::path path = tmp_dir_ / rank_file_name(rank_);
  return error_of([&] {
    h5::QuietErrors quiet;  // HDF5 failures become the Error this rank reports
    try {
      // The new folder's entry in root, durable before anything is committed from it; here
      // rather than in the constructor, so that --async-save's training thread does not wait.
      if (leader()) fsync_path(root_);
      written_ =
          write_rank_h5(path, rank_, world_size_, step_, slices_, sources_, info_.rank_metadata);
      file_bytes_ = static_cast<int64_t>(fs::file_size(path));
      file_crc_ = crc32c_file(path);  // read back from the page cache: what a loader will see
    } catch (const std::exception& e) {
      throw Error("writing " + path.string() + ": " + e.what());
    }
  });
}

void CheckpointSave::gather(Communicator& world, const std::string& write_error) {
  agree_on_phase(world, step_, "writing rank files", write_error);
  gathered_ = gather_rank_files(world, written_, file_bytes_, file_crc_);
}

std::string CheckpointSave::commit() {
  if (!leader()) return "";
  return error_of([&] {
    h5::QuietErrors quiet;
    commit_checkpoint(root_, tmp_dir_, final_dir_, step_, gathered_, info_);
  });
}

fs::path CheckpointSave::committed(Communicator& world, const std::string& commit_error) {
  agree_on_phase(world, step_, "committing", commit_error);
  return final_dir_;
}

namespace {
// The phases of one save in a row (checkpoint_save.h).
fs::path run_save(Communicator& world, CheckpointSave& save) {
  std::string error;
  {
    const trace::Span span("write_rank_file", trace::Kind::Checkpoint, 0, -1, "checkpoint");
    error = save.write_rank_file();
  }
  save.gather(world, error);
  {
    const trace::Span span("commit", trace::Kind::Checkpoint, 0, -1, "checkpoint");
    error = save.commit();
  }
  return save.committed(world, error);
}
}  // namespace

std::filesystem::path save_checkpoint(Communicator& world, const fs::path& root, int64_t step,
                                      const std::vector<CheckpointSlice>& slices,
                                      const CheckpointInfo& info) {
  CheckpointSave save(world, root, step, slices, info);
  return run_save(world, save);
}

std::filesystem::path save_sourced_checkpoint(Communicator& world, const fs::path& root,
                                              int64_t step, const std::vector<SourcedSlice>& slices,
                                              const CheckpointInfo& info) {
  std::vector<CheckpointSlice> plain;
  std::vector<SliceSource> sources;
  for (const SourcedSlice& s : slices) {
    plain.push_back(s.slice);
    sources.push_back(s.source);
  }
  CheckpointSave save(world, root, step, std::move(plain), info, std::move(sources));
  return run_save(world, save);
}

}  // namespace shardlm
