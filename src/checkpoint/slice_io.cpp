#include "checkpoint/slice_io.h"

#include <fcntl.h>

#include "checkpoint/manifest.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/trace.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

// Asks the kernel to start reading the next bytes of a contiguous dataset while the current
// block is checksummed and copied, so that a cold load overlaps computation with disk reads.
class ReadAhead {
 public:
  explicit ReadAhead(hid_t dataset) {
    data_offset_ = H5Dget_offset(dataset);  // HADDR_UNDEF unless contiguous and allocated
    const hid_t file = H5Iget_file_id(dataset);
    void* handle = nullptr;
    if (file >= 0 && data_offset_ != HADDR_UNDEF &&
        H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle)
      fd_ = *static_cast<int*>(handle);  // the sec2 driver's handle is the POSIX descriptor
    if (file >= 0) H5Fclose(file);
  }
  // Elements [first, first + count) of the dataset, of `element_bytes` each, will be read soon.
  void hint(int64_t first, int64_t count, size_t element_bytes) const {
    if (fd_ < 0 || count <= 0) return;
    const auto bytes = static_cast<off_t>(element_bytes);
    ::posix_fadvise(fd_, static_cast<off_t>(data_offset_) + first * bytes, count * bytes,
                    POSIX_FADV_WILLNEED);
  }

 private:
  haddr_t data_offset_ = HADDR_UNDEF;
  int fd_ = -1;
};

// How far ahead ReadAhead runs.
constexpr int64_t kReadAheadElements = 4 * kStreamBlockElements;

}  // namespace

bool is_stored_dtype(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
}

int64_t format_version_for(DType dtype) {
  return dtype == DType::F32 ? kCheckpointFormatVersion : kCheckpointFormatVersionDTypes;
}

std::string slice_dataset_path(const std::string& role, const std::string& name) {
  return "/" + role + "/" + name;
}

h5::Handle create_tensor_dataset(hid_t file, const std::string& role, const std::string& path,
                                 const std::vector<int64_t>& dims, DType dtype) {
  if (!h5::link_exists(file, role)) h5::create_group(file, role);
  h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5_CHECK(dcpl.get());
  // Contiguous: hyperslab reads and whole-slice writes go straight between file and memory.
  // No fill values: every element is written once.
  H5_CHECK(H5Pset_layout(dcpl, H5D_CONTIGUOUS));
  H5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
  h5::Handle space = h5::make_space(dims);
  h5::Handle type = h5::tensor_type(dtype);
  h5::Handle d(H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
               H5Dclose);
  if (d.get() < 0) fail("HDF5: cannot create dataset " + path + ": " + hdf5_error_string());
  return d;
}

uint32_t write_block(hid_t dataset, const Rect& block, DType dtype, const void* data,
                     uint32_t crc) {
  const int64_t n = block.numel();
  const trace::Span span("write_block", trace::Kind::Checkpoint,
                         static_cast<uint64_t>(n) * dtype_size(dtype), -1, "checkpoint");
  crc = crc32c_update(crc, data, static_cast<size_t>(n) * dtype_size(dtype));
  h5::Handle file_space(H5Dget_space(dataset), H5Sclose);
  H5_CHECK(file_space.get());
  h5::select_hyperslab(file_space, block.offset, block.count);
  h5::Handle mem_space = h5::make_space({n});
  h5::Handle type = h5::tensor_type(dtype);  // the file's own type: the bits go as they are
  H5_CHECK(H5Dwrite(dataset, type, mem_space, file_space, H5P_DEFAULT, data));
  return crc;
}

void write_slice_attributes(hid_t dataset, const std::vector<int64_t>& global_shape,
                            const std::vector<int64_t>& offset, uint32_t checksum, DType dtype) {
  h5::write_attr_i64_array(dataset, "global_shape", global_shape);
  h5::write_attr_i64_array(dataset, "offset", offset);
  h5::write_attr_u32(dataset, "checksum", checksum);
  h5::write_attr_string(dataset, "dtype", dtype_name(dtype));
}

void check_slice_attributes(hid_t dataset, const StoredSlice& slice) {
  h5::Handle type(H5Dget_type(dataset), H5Tclose);
  H5_CHECK(type.get());
  if (!h5::is_tensor_type(type, slice.dtype))
    fail(std::string("dataset type is not the manifest's ") + dtype_name(slice.dtype) +
         " (HDF5 class " + std::to_string(H5Tget_class(type)) + ", " +
         std::to_string(H5Tget_size(type)) + " bytes)");
  // Files before dtypes have no dtype attribute; the dataset type above says it all.
  if (h5::has_attr(dataset, "dtype")) {
    const std::string dtype = h5::read_attr_string(dataset, "dtype");
    if (dtype != dtype_name(slice.dtype))
      fail("attribute dtype '" + dtype + "' differs from the manifest's " +
           dtype_name(slice.dtype));
  }
  const auto dims = h5::dataset_dims(dataset);
  if (dims != slice.count)
    fail("dataset extent " + shape_string(dims) + " differs from the manifest's " +
         shape_string(slice.count));
  const auto global_shape = h5::read_attr_i64_array(dataset, "global_shape");
  if (global_shape != slice.global_shape)
    fail("attribute global_shape " + shape_string(global_shape) + " differs from the manifest's " +
         shape_string(slice.global_shape));
  const auto offset = h5::read_attr_i64_array(dataset, "offset");
  if (offset != slice.offset)
    fail("attribute offset " + shape_string(offset) + " differs from the manifest's " +
         shape_string(slice.offset));
  const uint32_t checksum = h5::read_attr_u32(dataset, "checksum");
  if (checksum != slice.checksum)
    fail("attribute checksum " + std::to_string(checksum) + " differs from the manifest's " +
         std::to_string(slice.checksum));
}

void stream_slice(hid_t dataset, const StoredSlice& slice, std::vector<float>& buffer,
                  const std::function<void(const Rect& block, const float* data)>& on_block,
                  float* slice_dest) {
  h5::Handle file_space(H5Dget_space(dataset), H5Sclose);
  H5_CHECK(file_space.get());
  h5::Handle type = h5::tensor_type(slice.dtype);  // read as stored: the checksum covers those bits
  const size_t element_bytes = dtype_size(slice.dtype);
  const bool f32 = slice.dtype == DType::F32;
  std::vector<uint8_t> stored;  // a block's stored bits, when they are not fp32 already
  const Rect whole{slice.offset, slice.count};
  uint32_t crc = 0;
  int64_t done = 0;  // elements streamed so far: blocks come in the slice's row-major order
  const ReadAhead read_ahead(dataset);
  read_ahead.hint(0, kReadAheadElements, element_bytes);
  for_each_block(whole, kStreamBlockElements, [&](const Rect& block) {
    std::vector<int64_t> local(block.offset.size());
    for (size_t d = 0; d < local.size(); ++d) local[d] = block.offset[d] - slice.offset[d];
    h5::select_hyperslab(file_space, local, block.count);
    const int64_t n = block.numel();
    // Keep the window kReadAheadElements ahead.
    read_ahead.hint(done + kReadAheadElements, n, element_bytes);
    h5::Handle mem_space = h5::make_space({n});
    if (!slice_dest) buffer.resize(static_cast<size_t>(n));
    float* data = slice_dest ? slice_dest + done : buffer.data();
    if (!f32) stored.resize(static_cast<size_t>(n) * element_bytes);
    void* raw = f32 ? static_cast<void*>(data) : stored.data();
    H5_CHECK(H5Dread(dataset, type, mem_space, file_space, H5P_DEFAULT, raw));
    crc = crc32c_update(crc, raw, static_cast<size_t>(n) * element_bytes);
    if (!f32) convert_to_float(slice.dtype, raw, data, static_cast<size_t>(n));
    on_block(block, data);
    done += n;
  });
  if (crc != slice.checksum)
    fail("checksum mismatch: the data's CRC32C is " + std::to_string(crc) +
         ", the manifest records " + std::to_string(slice.checksum) + " (corrupted data)");
}

void read_slice_piece(hid_t dataset, const StoredSlice& slice, const Rect& piece,
                      const Rect& request, float* dest) {
  const trace::Span span("read_piece", trace::Kind::Checkpoint,
                         static_cast<uint64_t>(piece.numel()) * dtype_size(slice.dtype), -1,
                         "checkpoint");
  std::vector<int64_t> in_file(piece.offset.size()), in_dest(piece.offset.size());
  for (size_t d = 0; d < piece.offset.size(); ++d) {
    in_file[d] = piece.offset[d] - slice.offset[d];
    in_dest[d] = piece.offset[d] - request.offset[d];
  }
  h5::Handle file_space(H5Dget_space(dataset), H5Sclose);
  H5_CHECK(file_space.get());
  h5::select_hyperslab(file_space, in_file, piece.count);
  if (slice.dtype == DType::F32) {  // straight into place: HDF5 scatters the piece into dest
    h5::Handle mem_space = h5::make_space(request.count);
    h5::select_hyperslab(mem_space, in_dest, piece.count);
    H5_CHECK(H5Dread(dataset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, dest));
    return;
  }
  // Stored bits -> fp32 here (core/dtype, the same conversion stream_slice uses), then placed.
  const auto n = static_cast<size_t>(piece.numel());
  std::vector<uint8_t> stored(n * dtype_size(slice.dtype));
  std::vector<float> values(n);
  h5::Handle mem_space = h5::make_space({piece.numel()});
  h5::Handle type = h5::tensor_type(slice.dtype);
  H5_CHECK(H5Dread(dataset, type, mem_space, file_space, H5P_DEFAULT, stored.data()));
  convert_to_float(slice.dtype, stored.data(), values.data(), n);
  copy_region(values.data(), piece, dest, request, piece);
}

std::string slice_context(const fs::path& dir, const StoredSlice& slice) {
  const bool first = slice.dataset == slice_dataset_path(slice.role, slice.name);
  return (dir / rank_file_name(slice.rank)).string() + ": tensor " +
         tensor_label(slice.role, slice.name) + (first ? "" : " (dataset " + slice.dataset + ")") +
         ": ";
}

std::string rank_file_problem(const fs::path& dir, const std::vector<StoredSlice>& slices, int rank,
                              int64_t expected_bytes) {
  const fs::path path = dir / rank_file_name(rank);
  std::string held;
  int n_held = 0;
  for (const auto& s : slices) {
    if (s.rank != rank) continue;
    if (n_held < 3) held += (n_held ? ", " : "") + tensor_label(s.role, s.name);
    ++n_held;
  }
  if (n_held > 3) held += " and " + std::to_string(n_held - 3) + " more";
  const std::string holds = n_held ? " (it holds tensors " + held + ")" : "";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return path.string() + ": rank file is missing" + holds;
  const auto bytes = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) return path.string() + ": cannot stat: " + ec.message() + holds;
  if (bytes != expected_bytes)
    return path.string() + ": file is " + std::to_string(bytes) + " bytes, the manifest records " +
           std::to_string(expected_bytes) +
           (bytes < expected_bytes ? " (truncated)" : " (overwritten)") + holds;
  return "";
}

}  // namespace shardlm
