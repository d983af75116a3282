#include "checkpoint/manifest.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <type_traits>

#include "checkpoint/directory.h"
#include "checkpoint/file_checksums.h"
#include "checkpoint/h5.h"
#include "checkpoint/rect.h"
#include "checkpoint/slice_io.h"
#include "core/checksum.h"
#include "core/error.h"

namespace shardlm {

namespace {

// Little-endian, length-prefixed encoding: the wire format for gathering slice lists and the
// canonical form the manifest checksum covers.
class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void put_bytes(const void* data, size_t n) {
    put<uint64_t>(n);
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + n);
  }
  void put_string(const std::string& s) { put_bytes(s.data(), s.size()); }
  void put_dims(const std::vector<int64_t>& v) { put_bytes(v.data(), v.size() * sizeof(int64_t)); }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(const std::vector<uint8_t>& bytes) : bytes_(bytes) {}
  template <typename T>
  T get() {
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;
  }
  std::string get_string() {
    const auto n = get<uint64_t>();
    const auto* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::vector<int64_t> get_dims() {
    const auto n = get<uint64_t>();
    std::vector<int64_t> v(n / sizeof(int64_t));
    std::memcpy(v.data(), take(n), n);
    return v;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  const uint8_t* take(size_t n) {
    if (n > bytes_.size() - pos_) fail("slice record list is truncated");
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  const std::vector<uint8_t>& bytes_;
  size_t pos_ = 0;
};

// `with_dtype`: the gathered records always carry it; the manifest checksum of a version 1
// manifest must not (it is the checksum every build before dtypes computes).
void put_slices(ByteWriter& w, const std::vector<StoredSlice>& slices, bool with_dtype) {
  w.put<uint64_t>(slices.size());
  for (const auto& s : slices) {
    w.put<int64_t>(s.rank);
    w.put_string(s.role);
    w.put_string(s.name);
    w.put_string(s.dataset);
    w.put_dims(s.global_shape);
    w.put_dims(s.offset);
    w.put_dims(s.count);
    w.put<uint32_t>(s.checksum);
    if (with_dtype) w.put_string(dtype_name(s.dtype));
  }
}

uint32_t manifest_checksum(const Manifest& m) {
  ByteWriter w;
  w.put<int64_t>(m.format_version);
  w.put<int64_t>(m.step);
  w.put<uint64_t>(m.files.size());
  for (const auto& f : m.files) {
    w.put_string(f.name);
    w.put<int64_t>(f.bytes);
  }
  put_slices(w, m.slices, m.format_version >= kCheckpointFormatVersionDTypes);
  w.put_string(m.config_text);
  w.put_bytes(m.tokenizer_model.data(), m.tokenizer_model.size());
  w.put<uint64_t>(m.metadata.size());
  for (const auto& [key, value] : m.metadata) {
    w.put_string(key);
    w.put<uint8_t>(static_cast<uint8_t>(value.index()));
    std::visit(
        [&w](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            w.put_string(v);
          } else if constexpr (std::is_same_v<T, std::vector<uint8_t>>) {
            w.put_bytes(v.data(), v.size());
          } else {
            w.put<T>(v);
          }
        },
        value);
  }
  return crc32c(w.bytes().data(), w.bytes().size());
}

// Rows of a [n, width] table of dims, padded with zeros past each row's ndim.
std::vector<int64_t> dims_table(const std::vector<StoredSlice>& slices, size_t width,
                                const std::vector<int64_t> StoredSlice::*field) {
  std::vector<int64_t> table(slices.size() * width, 0);
  for (size_t i = 0; i < slices.size(); ++i) {
    const auto& dims = slices[i].*field;
    std::copy(dims.begin(), dims.end(), table.begin() + static_cast<ptrdiff_t>(i * width));
  }
  return table;
}

void require_rows(const std::vector<int64_t>& table, size_t rows, size_t width,
                  const std::string& what) {
  if (table.size() != rows * width)
    fail(what + " has " + std::to_string(table.size()) + " entries, expected " +
         std::to_string(rows * width));
}

// slices/dtype, one stored dtype per slice. Manifests before dtypes have no such column: all
// their slices are f32. A version 1 manifest (checksummed without the column) that lists
// another dtype is refused: its checksum would not vouch for that.
std::vector<DType> read_dtypes(hid_t file, int64_t format_version, size_t n) {
  if (!h5::link_exists(file, "slices/dtype")) {
    if (format_version >= kCheckpointFormatVersionDTypes)
      fail("format_version " + std::to_string(format_version) + " needs a slices/dtype column");
    return std::vector<DType>(n, DType::F32);
  }
  const auto names = h5::read_strings(file, "slices/dtype");
  if (names.size() != n) fail("the slices/ columns have different lengths");
  std::vector<DType> dtypes;
  for (size_t i = 0; i < n; ++i) {
    const std::string where = "slices/dtype[" + std::to_string(i) + "] '" + names[i] + "'";
    DType dtype = DType::F32;
    try {
      dtype = dtype_from_name(names[i]);
    } catch (const Error&) {
      fail(where + " is not a dtype");
    }
    if (!is_stored_dtype(dtype)) fail(where + " is not a stored dtype (f32, bf16 or f16)");
    if (dtype != DType::F32 && format_version < kCheckpointFormatVersionDTypes)
      fail(where + " in a format_version " + std::to_string(format_version) +
           " manifest, which holds f32 tensors only");
    dtypes.push_back(dtype);
  }
  return dtypes;
}

Manifest read_manifest_contents(const std::filesystem::path& path) {
  h5::QuietErrors quiet;
  h5::Handle file = h5::open_file_read(path);
  Manifest m;
  if (!h5::has_attr(file, "format") ||
      h5::read_attr_string(file, "format") != kCheckpointFormatName)
    fail("not a shardlm checkpoint manifest (no format = \"" + std::string(kCheckpointFormatName) +
         "\" attribute)");
  m.format_version = h5::read_attr_i64(file, "format_version");
  if (m.format_version < kCheckpointFormatVersion ||
      m.format_version > kNewestCheckpointFormatVersion)
    fail("format_version " + std::to_string(m.format_version) +
         " is not one this build reads (it reads " + std::to_string(kCheckpointFormatVersion) +
         " to " + std::to_string(kNewestCheckpointFormatVersion) + ")");
  m.step = h5::read_attr_i64(file, "step");
  const int64_t world_size = h5::read_attr_i64(file, "world_size");

  const auto names = h5::read_strings(file, "files/name");
  const auto sizes = h5::read_i64s(file, "files/bytes");
  if (static_cast<int64_t>(names.size()) != world_size || sizes.size() != names.size())
    fail("files/name and files/bytes do not list world_size = " + std::to_string(world_size) +
         " files");
  for (size_t i = 0; i < names.size(); ++i) m.files.push_back({names[i], sizes[i], {}});
  if (h5::link_exists(file, "files/crc32c")) {
    const auto crcs = h5::read_u32s(file, "files/crc32c");
    if (crcs.size() != names.size())
      fail("files/crc32c does not list world_size = " + std::to_string(world_size) + " files");
    for (size_t i = 0; i < crcs.size(); ++i) m.files[i].crc32c = crcs[i];
  }

  const auto ranks = h5::read_i64s(file, "slices/rank");
  const auto roles = h5::read_strings(file, "slices/role");
  const auto tensor_names = h5::read_strings(file, "slices/name");
  const auto datasets = h5::read_strings(file, "slices/dataset");
  const auto ndims = h5::read_i64s(file, "slices/ndim");
  const auto checksums = h5::read_u32s(file, "slices/checksum");
  const size_t n = ranks.size();
  const auto dtypes = read_dtypes(file, m.format_version, n);
  if (roles.size() != n || tensor_names.size() != n || datasets.size() != n || ndims.size() != n ||
      checksums.size() != n)
    fail("the slices/ columns have different lengths");
  h5::Handle shape_set = h5::open_dataset(file, "slices/global_shape");
  const auto table_dims = h5::dataset_dims(shape_set);
  const size_t width = table_dims.size() == 2 ? static_cast<size_t>(table_dims[1]) : 0;
  const auto shapes = h5::read_i64s(file, "slices/global_shape");
  const auto offsets = h5::read_i64s(file, "slices/offset");
  const auto counts = h5::read_i64s(file, "slices/count");
  require_rows(shapes, n, width, "slices/global_shape");
  require_rows(offsets, n, width, "slices/offset");
  require_rows(counts, n, width, "slices/count");
  for (size_t i = 0; i < n; ++i) {
    if (ndims[i] < 1 || static_cast<size_t>(ndims[i]) > width)
      fail("slices/ndim[" + std::to_string(i) + "] is out of range");
    if (ranks[i] < 0 || ranks[i] >= world_size)
      fail("slices/rank[" + std::to_string(i) + "] is out of range");
    StoredSlice s;
    s.rank = static_cast<int>(ranks[i]);
    s.role = roles[i];
    s.name = tensor_names[i];
    s.dataset = datasets[i];
    const auto row = static_cast<ptrdiff_t>(i * width), end = row + ndims[i];
    s.global_shape.assign(shapes.begin() + row, shapes.begin() + end);
    s.offset.assign(offsets.begin() + row, offsets.begin() + end);
    s.count.assign(counts.begin() + row, counts.begin() + end);
    s.checksum = checksums[i];
    s.dtype = dtypes[i];
    m.slices.push_back(std::move(s));
  }
  m.config_text = h5::read_string(file, "config_text");
  m.tokenizer_model = h5::read_bytes(file, "tokenizer_model");
  m.metadata = h5::read_metadata(file, "metadata");
  const uint32_t stored = h5::read_attr_u32(file, "manifest_checksum");
  const uint32_t computed = manifest_checksum(m);
  if (stored != computed)
    fail("manifest_checksum mismatch (stored " + std::to_string(stored) + ", computed " +
         std::to_string(computed) + "): the manifest is corrupted");
  return m;
}

}  // namespace

std::string rank_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "rank_%05d.h5", rank);
  return buf;
}

std::string tensor_label(const std::string& role, const std::string& name) {
  return role + "/" + name;
}

void write_run_info(hid_t file, int64_t format_version, int64_t step,
                    const std::string& config_text, const std::vector<uint8_t>& tokenizer_model,
                    const Metadata& metadata) {
  h5::write_attr_string(file, "format", kCheckpointFormatName);
  h5::write_attr_i64(file, "format_version", format_version);
  h5::write_attr_i64(file, "step", step);
  h5::write_string(file, "config_text", config_text);
  h5::write_bytes(file, "tokenizer_model", tokenizer_model);
  h5::write_metadata(file, "metadata", metadata);
}

void write_manifest(const std::filesystem::path& path, const Manifest& m) {
  h5::Handle file = h5::create_file(path);
  write_run_info(file, m.format_version, m.step, m.config_text, m.tokenizer_model, m.metadata);
  h5::write_attr_i64(file, "world_size", static_cast<int64_t>(m.files.size()));
  h5::write_attr_string(file, "checksum_algorithm", "crc32c");
  h5::write_attr_u32(file, "manifest_checksum", manifest_checksum(m));

  h5::Handle files = h5::create_group(file, "files");
  std::vector<std::string> names;
  std::vector<int64_t> sizes;
  std::vector<uint32_t> crcs;
  for (const auto& f : m.files) {
    names.push_back(f.name);
    sizes.push_back(f.bytes);
    if (f.crc32c) crcs.push_back(*f.crc32c);
  }
  h5::write_strings(files, "name", names);
  h5::write_i64s(files, "bytes", {static_cast<int64_t>(sizes.size())}, sizes);
  if (crcs.size() == m.files.size()) h5::write_u32s(files, "crc32c", crcs);

  h5::Handle slices = h5::create_group(file, "slices");
  const auto n = static_cast<int64_t>(m.slices.size());
  size_t width = 1;
  std::vector<int64_t> ranks, ndims;
  std::vector<std::string> roles, tensor_names, datasets, dtypes;
  std::vector<uint32_t> checksums;
  for (const auto& s : m.slices) {
    width = std::max(width, s.global_shape.size());
    ranks.push_back(s.rank);
    ndims.push_back(static_cast<int64_t>(s.global_shape.size()));
    roles.push_back(s.role);
    tensor_names.push_back(s.name);
    datasets.push_back(s.dataset);
    checksums.push_back(s.checksum);
    dtypes.push_back(dtype_name(s.dtype));
  }
  const std::vector<int64_t> table{n, static_cast<int64_t>(width)};
  h5::write_i64s(slices, "rank", {n}, ranks);
  h5::write_strings(slices, "role", roles);
  h5::write_strings(slices, "name", tensor_names);
  h5::write_strings(slices, "dataset", datasets);
  h5::write_i64s(slices, "ndim", {n}, ndims);
  h5::write_i64s(slices, "global_shape", table,
                 dims_table(m.slices, width, &StoredSlice::global_shape));
  h5::write_i64s(slices, "offset", table, dims_table(m.slices, width, &StoredSlice::offset));
  h5::write_i64s(slices, "count", table, dims_table(m.slices, width, &StoredSlice::count));
  h5::write_u32s(slices, "checksum", checksums);
  h5::write_strings(slices, "dtype", dtypes);
  slices.reset();
  files.reset();
  file.close_checked();
  fsync_path(path);
}

Manifest read_manifest(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    fail("checkpoint manifest " + path.string() + " is missing");
  check_manifest_sidecar(path);
  try {
    return read_manifest_contents(path);
  } catch (const Error& e) {
    throw Error("checkpoint manifest " + path.string() + " is unreadable: " + e.what());
  }
}

std::vector<uint8_t> encode_slices(const std::vector<StoredSlice>& slices) {
  ByteWriter w;
  put_slices(w, slices, /*with_dtype=*/true);
  return std::move(w.bytes());
}

std::vector<StoredSlice> decode_slices(const std::vector<uint8_t>& bytes) {
  ByteReader r(bytes);
  std::vector<StoredSlice> slices(r.get<uint64_t>());
  for (auto& s : slices) {
    s.rank = static_cast<int>(r.get<int64_t>());
    s.role = r.get_string();
    s.name = r.get_string();
    s.dataset = r.get_string();
    s.global_shape = r.get_dims();
    s.offset = r.get_dims();
    s.count = r.get_dims();
    s.checksum = r.get<uint32_t>();
    s.dtype = dtype_from_name(r.get_string());
  }
  if (!r.done()) fail("slice record list has trailing bytes");
  return slices;
}

std::vector<std::string> check_slice_coverage(const std::vector<StoredSlice>& slices) {
  std::vector<std::string> problems;
  std::map<std::pair<std::string, std::string>, std::vector<const StoredSlice*>> by_tensor;
  for (const auto& s : slices) by_tensor[{s.role, s.name}].push_back(&s);
  for (const auto& [key, parts] : by_tensor) {
    const std::string label = tensor_label(key.first, key.second);
    const auto& shape = parts.front()->global_shape;
    bool consistent = true;
    for (const StoredSlice* s : parts) {
      const std::string where = rank_file_name(s->rank) + ": tensor " + label + ": ";
      if (s->dtype != parts.front()->dtype) {
        problems.push_back(where + "dtype " + dtype_name(s->dtype) + " differs from " +
                           dtype_name(parts.front()->dtype) + " in " +
                           rank_file_name(parts.front()->rank));
        consistent = false;
        continue;
      }
      if (s->global_shape != shape) {
        problems.push_back(where + "global shape " + shape_string(s->global_shape) +
                           " differs from " + shape_string(shape) + " in " +
                           rank_file_name(parts.front()->rank));
        consistent = false;
        continue;
      }
      bool inside = s->offset.size() == shape.size() && s->count.size() == shape.size();
      for (size_t d = 0; inside && d < shape.size(); ++d)
        inside = s->offset[d] >= 0 && s->count[d] >= 1 && s->offset[d] + s->count[d] <= shape[d];
      if (!inside) {
        problems.push_back(where + "rectangle at " + shape_string(s->offset) + " of extent " +
                           shape_string(s->count) + " lies outside " + shape_string(shape));
        consistent = false;
      }
    }
    if (!consistent) continue;
    std::vector<Rect> uncovered{Rect{std::vector<int64_t>(shape.size(), 0), shape}};
    for (const StoredSlice* s : parts) {
      std::vector<Rect> next;
      for (const Rect& u : uncovered)
        for (Rect& piece : subtract(u, Rect{s->offset, s->count})) next.push_back(std::move(piece));
      uncovered = std::move(next);
    }
    if (!uncovered.empty())
      problems.push_back("tensor " + label + " " + shape_string(shape) + ": the rectangle at " +
                         shape_string(uncovered.front().offset) + " of extent " +
                         shape_string(uncovered.front().count) + " is stored in no rank file");
  }
  return problems;
}

}  // namespace shardlm
