// CheckpointReader: fills any rectangle of a global tensor from the stored rectangles that
// overlap it, verifying each touched stored rectangle's checksum once.
#include <bit>
#include <map>

#include "checkpoint/checkpoint.h"
#include "checkpoint/file_checksums.h"
#include "checkpoint/h5.h"
#include "checkpoint/manifest.h"
#include "checkpoint/slice_io.h"
#include "core/error.h"

namespace shardlm {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "checkpoint I/O assumes a little-endian host");

int64_t StoredSlice::numel() const {
  return Rect{offset, count}.numel();
}

int64_t StoredTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : global_shape) n *= d;
  return n;
}

struct CheckpointReader::State {
  fs::path dir;
  Manifest manifest;
  // (role, name) -> indices into manifest.slices, in manifest order ("first wins" on overlap).
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> by_tensor;
  std::vector<h5::Handle> files;  // per rank, opened on first use
  std::vector<bool> verified;     // per slice
  std::vector<float> buffer;      // streaming scratch, at most kStreamBlockElements

  // The whole file's checksum is checked before HDF5 first parses it (file_checksums.h).
  hid_t file(int rank) {
    auto& f = files[static_cast<size_t>(rank)];
    if (f.get() >= 0) return f;
    const fs::path path = dir / rank_file_name(rank);
    if (const auto& crc = manifest.files[static_cast<size_t>(rank)].crc32c) {
      const std::string problem = file_checksum_problem(path, *crc);
      if (!problem.empty()) fail(problem);
    }
    f = h5::open_file_read(path);
    return f;
  }

  // Copies the parts `pieces` (global coordinates, inside both) of stored slice `index` into
  // dest, laid out row-major over `request`.
  void fill(size_t index, const Rect& request, const std::vector<Rect>& pieces, float* dest) {
    const StoredSlice& slice = manifest.slices[index];
    try {
      h5::Handle dataset = h5::open_dataset(file(slice.rank), slice.dataset);
      if (!verified[index]) {
        // One pass does both: checksum every block of the slice, keep the requested parts.
        // When all of the slice is wanted and lies contiguously in dest (e.g. loading the layout
        // that was saved), the blocks are read straight into place.
        check_slice_attributes(dataset, slice);
        const Rect stored{slice.offset, slice.count};
        if (pieces.size() == 1 && pieces[0].offset == stored.offset &&
            pieces[0].count == stored.count && contiguous_within(stored, request)) {
          stream_slice(
              dataset, slice, buffer, [](const Rect&, const float*) {},
              dest + flat_index(request, stored.offset));
        } else {
          stream_slice(dataset, slice, buffer, [&](const Rect& block, const float* data) {
            for (const Rect& piece : pieces)
              if (const auto part = intersect(block, piece))
                copy_region(data, block, dest, request, *part);
          });
        }
        verified[index] = true;
        return;
      }
      for (const Rect& piece : pieces) read_slice_piece(dataset, slice, piece, request, dest);
    } catch (const Error& e) {
      throw Error(slice_context(dir, slice) + e.what());
    }
  }
};

CheckpointReader::CheckpointReader(const fs::path& dir) : state_(std::make_unique<State>()) {
  h5::QuietErrors quiet;
  state_->dir = dir;
  state_->manifest = read_manifest(dir / kManifestFileName);
  const Manifest& m = state_->manifest;
  for (size_t r = 0; r < m.files.size(); ++r) {
    if (m.files[r].name != rank_file_name(static_cast<int>(r)))
      fail("checkpoint manifest " + (dir / kManifestFileName).string() + " lists file '" +
           m.files[r].name + "' for rank " + std::to_string(r) + ", expected " +
           rank_file_name(static_cast<int>(r)));
    const std::string problem =
        rank_file_problem(dir, m.slices, static_cast<int>(r), m.files[r].bytes);
    if (!problem.empty()) fail("cannot load checkpoint: " + problem);
  }
  for (size_t i = 0; i < m.slices.size(); ++i)
    state_->by_tensor[{m.slices[i].role, m.slices[i].name}].push_back(i);
  state_->files.resize(m.files.size());
  state_->verified.assign(m.slices.size(), false);
}

CheckpointReader::~CheckpointReader() = default;

const fs::path& CheckpointReader::dir() const {
  return state_->dir;
}
int64_t CheckpointReader::step() const {
  return state_->manifest.step;
}
int64_t CheckpointReader::format_version() const {
  return state_->manifest.format_version;
}
int CheckpointReader::world_size() const {
  return static_cast<int>(state_->manifest.files.size());
}
const std::string& CheckpointReader::config_text() const {
  return state_->manifest.config_text;
}
const std::vector<uint8_t>& CheckpointReader::tokenizer_model() const {
  return state_->manifest.tokenizer_model;
}
const Metadata& CheckpointReader::metadata() const {
  return state_->manifest.metadata;
}
const std::vector<StoredSlice>& CheckpointReader::slices() const {
  return state_->manifest.slices;
}

namespace {
template <typename T>
const T& metadata_as(const Metadata& metadata, const std::string& key, const fs::path& dir,
                     const char* type) {
  const auto it = metadata.find(key);
  if (it == metadata.end())
    fail("checkpoint " + dir.string() + " has no metadata entry '" + key + "'");
  if (!std::holds_alternative<T>(it->second))
    fail("checkpoint " + dir.string() + ": metadata entry '" + key + "' is not " + type);
  return std::get<T>(it->second);
}
}  // namespace

int64_t CheckpointReader::metadata_int(const std::string& key) const {
  return metadata_as<int64_t>(metadata(), key, dir(), "an int64");
}
double CheckpointReader::metadata_double(const std::string& key) const {
  return metadata_as<double>(metadata(), key, dir(), "a double");
}
const std::string& CheckpointReader::metadata_string(const std::string& key) const {
  return metadata_as<std::string>(metadata(), key, dir(), "a string");
}
const std::vector<uint8_t>& CheckpointReader::metadata_bytes(const std::string& key) const {
  return metadata_as<std::vector<uint8_t>>(metadata(), key, dir(), "a byte string");
}

Metadata CheckpointReader::rank_metadata(int rank) const {
  SHARDLM_CHECK(rank >= 0 && rank < world_size(), "rank " + std::to_string(rank) +
                                                      " is outside the checkpoint's world of " +
                                                      std::to_string(world_size()));
  h5::QuietErrors quiet;
  try {
    return h5::read_metadata(state_->file(rank), "metadata");
  } catch (const Error& e) {
    throw Error((dir() / rank_file_name(rank)).string() + ": rank metadata: " + e.what());
  }
}

std::vector<StoredTensor> CheckpointReader::tensors() const {
  std::vector<StoredTensor> out;
  for (const auto& [key, indices] : state_->by_tensor) {
    const StoredSlice& first = state_->manifest.slices[indices.front()];
    out.push_back({key.first, key.second, first.global_shape, first.dtype});
  }
  return out;
}

bool CheckpointReader::has_tensor(const std::string& role, const std::string& name) const {
  return state_->by_tensor.count({role, name}) > 0;
}

const std::vector<int64_t>& CheckpointReader::global_shape(const std::string& role,
                                                           const std::string& name) const {
  const auto it = state_->by_tensor.find({role, name});
  if (it == state_->by_tensor.end())
    fail("checkpoint " + dir().string() + " holds no tensor " + tensor_label(role, name));
  return state_->manifest.slices[it->second.front()].global_shape;
}

void CheckpointReader::read(const std::string& role, const std::string& name,
                            const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                            float* dest) {
  h5::QuietErrors quiet;
  const std::string label =
      "checkpoint " + dir().string() + ": tensor " + tensor_label(role, name) + ": ";
  const auto& shape = global_shape(role, name);
  bool inside = offset.size() == shape.size() && count.size() == shape.size();
  for (size_t d = 0; inside && d < shape.size(); ++d)
    inside = offset[d] >= 0 && count[d] >= 0 && offset[d] + count[d] <= shape[d];
  if (!inside)
    fail(label + "requested rectangle at " + shape_string(offset) + " of extent " +
         shape_string(count) + " does not fit in " + shape_string(shape));
  const Rect request{offset, count};
  if (request.numel() == 0) return;

  // Walk the stored rectangles in manifest order, each filling what is still uncovered.
  std::vector<Rect> uncovered{request};
  for (size_t index : state_->by_tensor.at({role, name})) {
    const StoredSlice& slice = state_->manifest.slices[index];
    const Rect stored{slice.offset, slice.count};
    std::vector<Rect> pieces, still_uncovered;
    for (const Rect& u : uncovered) {
      if (const auto piece = intersect(u, stored)) pieces.push_back(*piece);
      for (Rect& rest : subtract(u, stored)) still_uncovered.push_back(std::move(rest));
    }
    if (pieces.empty()) continue;
    state_->fill(index, request, pieces, dest);
    uncovered = std::move(still_uncovered);
    if (uncovered.empty()) return;
  }
  fail(label + "the rectangle at " + shape_string(uncovered.front().offset) + " of extent " +
       shape_string(uncovered.front().count) + " is stored in no rank file");
}

}  // namespace shardlm
