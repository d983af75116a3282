// Sharded HDF5 checkpoints (schema: docs/checkpoint-format.md).
//
// Every rank writes the rectangles of the global tensors it owns into its own file,
// <root>/step_<8-digit step>/rank_<5-digit world rank>.h5; rank 0 adds manifest.h5, which lists
// every stored rectangle with its checksum plus the run's metadata. A checkpoint becomes
// visible only through an atomic rename of step_X.tmp/ to step_X/ and of latest.tmp to
// latest, so a crash at any moment leaves the previous checkpoint loadable.
// A CheckpointReader fills any rectangle of a global tensor from whichever stored rectangles
// overlap it, which is what lets a checkpoint load into another TP/PP/DP layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace shardlm {

class Communicator;

// A file's format_version is the oldest version that describes its contents, so that a build
// reads every file it can and refuses, by version, one it would misread:
//   1: every tensor is f32 (all checkpoints before dtypes existed, and every checkpoint the
//      trainer saves: any build reads them);
//   2: tensors may be stored as bf16 or f16 (the manifest's slices/dtype column); builds that
//      know only version 1 refuse these instead of failing their checksums.
// Readers accept 1 through kNewestCheckpointFormatVersion.
constexpr int64_t kCheckpointFormatVersion = 1;
constexpr int64_t kCheckpointFormatVersionDTypes = 2;
constexpr int64_t kNewestCheckpointFormatVersion = kCheckpointFormatVersionDTypes;

// Roles a stored tensor can have.
inline constexpr const char* kRoleParam = "param";
inline constexpr const char* kRoleExpAvg = "exp_avg";
inline constexpr const char* kRoleExpAvgSq = "exp_avg_sq";

// One rectangle of a global tensor, written straight from the caller's memory in the caller's
// dtype (F32, BF16 or F16: no conversion on save; every slice of a tensor has the same dtype).
struct CheckpointSlice {
  std::string role;                   // kRoleParam, kRoleExpAvg or kRoleExpAvgSq
  std::string name;                   // global tensor name, e.g. "h.3.mlp.c_fc.weight"
  std::vector<int64_t> global_shape;  // the full tensor
  std::vector<int64_t> offset;        // the rectangle's corner in the global tensor
  std::vector<int64_t> count;         // the rectangle's extent
  const void* data = nullptr;         // [prod(count)] elements of `dtype`, row-major
  DType dtype = DType::F32;
};

// Where a slice's elements come from when they are not in the caller's memory (an import
// streaming another engine's file): fills `out` with elements [first, first + n) of the
// rectangle (row-major, the slice's dtype), in increasing order of first and at most 2^20 at a
// time, while that slice is written (after the slices before it).
using SliceSource = std::function<void(int64_t first, int64_t n, void* out)>;
struct SourcedSlice {
  CheckpointSlice slice;  // its data is null
  SliceSource source;
};

// Key/value metadata: integers, doubles, text and opaque byte strings (RNG states).
using MetadataValue = std::variant<int64_t, double, std::string, std::vector<uint8_t>>;
using Metadata = std::map<std::string, MetadataValue>;

// Everything but the tensors. The global fields are taken from rank 0.
struct CheckpointInfo {
  std::string config_text;               // the effective config, as text
  std::vector<uint8_t> tokenizer_model;  // opaque tokenizer model bytes (may be empty)
  Metadata metadata;                     // run-wide: optimizer step, samples, layout, ...
  Metadata rank_metadata;                // this rank's own (e.g. its RNG state), in its file
};

// One rectangle stored in a rank file, as the manifest lists it.
struct StoredSlice {
  int rank = 0;  // which rank_<rank>.h5 holds it
  std::string role, name;
  // Its dataset in that file: "/<role>/<name>", and "/<role>/<name>@<k>" for the k-th (k >= 1)
  // further rectangle of the same tensor and role that one rank stores.
  std::string dataset;
  std::vector<int64_t> global_shape, offset, count;
  uint32_t checksum = 0;     // CRC32C of the stored little-endian bytes, row-major
  DType dtype = DType::F32;  // as stored: F32, BF16 or F16
  int64_t numel() const;
};

// A global tensor of the checkpoint (all its stored rectangles together).
struct StoredTensor {
  std::string role, name;
  std::vector<int64_t> global_shape;
  DType dtype = DType::F32;  // the dtype all its slices are stored in
  int64_t numel() const;
};

// "step_00000100"
std::string checkpoint_dir_name(int64_t step);

// Collective over `world`: every rank passes the rectangles it owns (primary copies only; any
// number per tensor and role; empty rectangles are skipped; names contain no '/' or '@'),
// which together must cover every tensor they name. Each slice
// is written from the caller's memory; the checkpoint is committed atomically and `latest`
// updated. Leftover *.tmp directories of earlier attempts are removed. Returns the committed
// directory on every rank. Throws on every rank if any rank fails (never hangs on one).
std::filesystem::path save_checkpoint(Communicator& world, const std::filesystem::path& root,
                                      int64_t step, const std::vector<CheckpointSlice>& slices,
                                      const CheckpointInfo& info);

// save_checkpoint for slices whose elements come from their sources: memory stays at one block.
std::filesystem::path save_sourced_checkpoint(Communicator& world,
                                              const std::filesystem::path& root, int64_t step,
                                              const std::vector<SourcedSlice>& slices,
                                              const CheckpointInfo& info);

// Steps of the committed checkpoints under root (step_XXXXXXXX dirs with a manifest), ascending.
std::vector<int64_t> list_checkpoints(const std::filesystem::path& root);

// The directory `latest` names if it holds a manifest, else the newest committed step_ dir;
// nullopt when there is none. *.tmp directories are never returned.
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& root);

// The one way a user-given path becomes a checkpoint (--resume, `shardlm generate`, `shardlm
// ckpt`): a committed checkpoint directory (it has a manifest.h5) as is; a run directory
// resolves to the newest committed checkpoint under <path>/checkpoints; a checkpoint root to
// the newest under it (find_latest_checkpoint). Throws naming the path when it does not exist
// or holds no committed checkpoint.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path);

// Deletes committed checkpoints except the newest `keep_last`, those whose step is a multiple
// of `keep_every` (0: none kept for that reason) and the one `latest` names. Run by one rank
// after a commit. Returns the deleted directories.
std::vector<std::filesystem::path> apply_retention(const std::filesystem::path& root, int keep_last,
                                                   int64_t keep_every);

// Read access to one committed checkpoint directory.
class CheckpointReader {
 public:
  // Refuses a missing or corrupted manifest, an unknown format version, and a missing or
  // truncated rank file, naming the file.
  explicit CheckpointReader(const std::filesystem::path& dir);
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  const std::filesystem::path& dir() const;
  int64_t step() const;
  int64_t format_version() const;
  int world_size() const;  // number of rank files
  const std::string& config_text() const;
  const std::vector<uint8_t>& tokenizer_model() const;
  const Metadata& metadata() const;
  // Typed access to metadata(); throws naming the key if it is absent or of another type.
  int64_t metadata_int(const std::string& key) const;
  double metadata_double(const std::string& key) const;
  const std::string& metadata_string(const std::string& key) const;
  const std::vector<uint8_t>& metadata_bytes(const std::string& key) const;
  // What `rank` stored as CheckpointInfo::rank_metadata (read from its file).
  Metadata rank_metadata(int rank) const;

  const std::vector<StoredSlice>& slices() const;  // manifest order
  std::vector<StoredTensor> tensors() const;       // sorted by role, then name
  bool has_tensor(const std::string& role, const std::string& name) const;
  // Throws naming the tensor if the checkpoint does not hold it.
  const std::vector<int64_t>& global_shape(const std::string& role, const std::string& name) const;

  // dest: [prod(count)] row-major, the rectangle (offset, count) of the global tensor, as fp32
  // whatever dtype it is stored in (bf16 and f16 convert exactly). Filled from every stored
  // rectangle that overlaps it (the first in manifest order where stored rectangles overlap).
  // Throws if any element is not stored, or if a stored rectangle it touches fails its checksum
  // (each one is verified once per reader), naming file and tensor.
  void read(const std::string& role, const std::string& name, const std::vector<int64_t>& offset,
            const std::vector<int64_t>& count, float* dest);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct VerifyReport {
  int files = 0;
  int64_t slices = 0;
  int64_t tensors = 0;
  int64_t bytes = 0;  // tensor bytes checksummed
};

// Checks the manifest, that every tensor is fully covered, and every stored rectangle of every
// file against the manifest and its checksum. Throws one Error listing every problem found,
// each naming the file and the tensor.
VerifyReport verify_checkpoint(const std::filesystem::path& dir);

// Writes one HDF5 file with the full tensors /<role>/<name>, each in its stored dtype (same
// attributes as a rank file, offset all zero) plus the metadata, streaming tensor by tensor
// through a bounded buffer.
void consolidate_checkpoint(const std::filesystem::path& dir, const std::filesystem::path& out_h5);

// Human-readable summary: step, format, layout metadata, every tensor with its dtype, global
// shape and size, and the config text.
std::string describe_checkpoint(const std::filesystem::path& dir);

}  // namespace shardlm
