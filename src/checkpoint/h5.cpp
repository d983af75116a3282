#include "checkpoint/h5.h"

#include <type_traits>

#include "core/error.h"

namespace shardlm::h5 {

namespace {
// HDF5 1.10 closes every file still open at exit, and for a file whose H5Fclose failed (a full
// disk) that crashes inside the library (SIGSEGV in H5F__close_cb) after our error was printed.
// Every file is closed explicitly, so nothing needs that clean-up: turn it off before the library
// starts (a static initialiser runs before main, hence before any HDF5 call).
const bool kNoCloseAtExit = [] {
  H5dont_atexit();
  return true;
}();
}  // namespace

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = -1;
}

QuietErrors::QuietErrors() {
  H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

QuietErrors::~QuietErrors() {
  H5Eset_auto2(H5E_DEFAULT, func_, data_);
}

void Handle::close_checked() {
  const hid_t id = id_;
  id_ = -1;
  if (id >= 0 && closer_) H5_CHECK(closer_(id));
}

namespace {

Handle checked(hid_t id, Handle::Closer closer, const std::string& what) {
  if (id < 0) fail("HDF5: " + what + ": " + hdf5_error_string());
  return Handle(id, closer);
}

// The file-access properties of every checkpoint file: the 1.8+ format checksums its object
// headers and superblock, and large datasets start on 4 KiB boundaries.
Handle file_access() {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate(FILE_ACCESS)");
  H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
  H5_CHECK(H5Pset_alignment(fapl, 1 << 20, 4096));
  return fapl;
}

Handle string_type() {
  Handle t = checked(H5Tcopy(H5T_C_S1), H5Tclose, "H5Tcopy");
  H5_CHECK(H5Tset_size(t, H5T_VARIABLE));
  H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8));
  return t;
}

Handle scalar_space() {
  return checked(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
}

Handle create_dataset(hid_t loc, const std::string& name, hid_t type, hid_t space) {
  return checked(H5Dcreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose, "create dataset " + name);
}

Handle open_attr(hid_t obj, const std::string& name) {
  return checked(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
}

Handle create_attr(hid_t obj, const std::string& name, hid_t type, hid_t space) {
  return checked(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                 "create attribute " + name);
}

int64_t attr_elements(hid_t attr) {
  Handle space = checked(H5Aget_space(attr), H5Sclose, "H5Aget_space");
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  H5_CHECK(n);
  return n;
}

int64_t dataset_elements(hid_t dataset) {
  Handle space = checked(H5Dget_space(dataset), H5Sclose, "H5Dget_space");
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  H5_CHECK(n);
  return n;
}

// Writes a whole numeric dataset (no write for zero elements: HDF5 wants a buffer then).
template <typename T>
void write_numeric(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                   const std::vector<int64_t>& dims, const T* values) {
  Handle space = make_space(dims);
  Handle d = create_dataset(loc, name, file_type, space);
  int64_t n = 1;
  for (int64_t v : dims) n *= v;
  if (n > 0) H5_CHECK(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values));
}

template <typename T>
std::vector<T> read_numeric(hid_t loc, const std::string& name, hid_t mem_type) {
  Handle d = open_dataset(loc, name);
  std::vector<T> out(static_cast<size_t>(dataset_elements(d)));
  if (!out.empty()) H5_CHECK(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()));
  return out;
}

template <typename T>
T read_scalar(hid_t loc, const std::string& name, hid_t mem_type) {
  const auto values = read_numeric<T>(loc, name, mem_type);
  if (values.size() != 1)
    fail("HDF5 dataset " + name + " should hold one value, holds " + std::to_string(values.size()));
  return values[0];
}

herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

Handle tensor_type(DType dtype) {
  Handle t = checked(H5Tcopy(H5T_IEEE_F32LE), H5Tclose, "H5Tcopy(H5T_IEEE_F32LE)");
  if (dtype == DType::F32) return t;
  // (exponent bits, mantissa bits, exponent bias) of the 16-bit formats.
  size_t exponent_bits = 0, mantissa_bits = 0, bias = 0;
  if (dtype == DType::F16) {
    exponent_bits = 5, mantissa_bits = 10, bias = 15;
  } else if (dtype == DType::BF16) {
    exponent_bits = 8, mantissa_bits = 7, bias = 127;
  } else {
    fail(std::string("no HDF5 tensor type for dtype ") + dtype_name(dtype) +
         " (f32, bf16 and f16 only)");
  }
  // Fields first (they must fit the precision), then shrink precision and size to 16 bits.
  H5_CHECK(H5Tset_fields(t, 15, mantissa_bits, exponent_bits, 0, mantissa_bits));
  H5_CHECK(H5Tset_precision(t, 16));
  H5_CHECK(H5Tset_size(t, 2));
  H5_CHECK(H5Tset_ebias(t, bias));
  return t;
}

bool is_tensor_type(hid_t type, DType dtype) {
  Handle expected = tensor_type(dtype);
  const htri_t equal = H5Tequal(type, expected);
  H5_CHECK(equal);
  return equal > 0;
}

Handle create_file(const std::filesystem::path& path) {
  Handle fapl = file_access();
  return checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose,
                 "create file " + path.string());
}

Handle open_file_read(const std::filesystem::path& path) {
  Handle fapl = file_access();
  return checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose,
                 "open file " + path.string() + " (truncated or not an HDF5 file?)");
}

Handle open_dataset(hid_t loc, const std::string& path) {
  return checked(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose, "open dataset " + path);
}

Handle create_group(hid_t loc, const std::string& name) {
  return checked(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                 "create group " + name);
}

Handle open_group(hid_t loc, const std::string& name) {
  return checked(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose, "open group " + name);
}

bool link_exists(hid_t loc, const std::string& name) {
  const htri_t r = H5Lexists(loc, name.c_str(), H5P_DEFAULT);
  H5_CHECK(r);
  return r > 0;
}

Handle make_space(const std::vector<int64_t>& dims) {
  if (dims.empty()) return scalar_space();
  std::vector<hsize_t> d(dims.begin(), dims.end());
  return checked(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), H5Sclose,
                 "H5Screate_simple");
}

std::vector<int64_t> dataset_dims(hid_t dataset) {
  Handle space = checked(H5Dget_space(dataset), H5Sclose, "H5Dget_space");
  const int ndim = H5Sget_simple_extent_ndims(space);
  H5_CHECK(ndim);
  std::vector<hsize_t> d(static_cast<size_t>(ndim));
  H5_CHECK(H5Sget_simple_extent_dims(space, d.data(), nullptr));
  return std::vector<int64_t>(d.begin(), d.end());
}

void select_hyperslab(hid_t space, const std::vector<int64_t>& offset,
                      const std::vector<int64_t>& count) {
  std::vector<hsize_t> start(offset.begin(), offset.end()), cnt(count.begin(), count.end());
  H5_CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr));
}

bool has_attr(hid_t obj, const std::string& name) {
  const htri_t r = H5Aexists(obj, name.c_str());
  H5_CHECK(r);
  return r > 0;
}

void write_attr_i64(hid_t obj, const std::string& name, int64_t value) {
  Handle space = scalar_space();
  Handle a = create_attr(obj, name, H5T_STD_I64LE, space);
  H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, &value));
}

void write_attr_u32(hid_t obj, const std::string& name, uint32_t value) {
  Handle space = scalar_space();
  Handle a = create_attr(obj, name, H5T_STD_U32LE, space);
  H5_CHECK(H5Awrite(a, H5T_NATIVE_UINT32, &value));
}

void write_attr_i64_array(hid_t obj, const std::string& name, const std::vector<int64_t>& values) {
  Handle space = make_space({static_cast<int64_t>(values.size())});
  Handle a = create_attr(obj, name, H5T_STD_I64LE, space);
  if (!values.empty()) H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, values.data()));
}

void write_attr_string(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = string_type();
  Handle space = scalar_space();
  Handle a = create_attr(obj, name, type, space);
  const char* p = value.c_str();
  H5_CHECK(H5Awrite(a, type, &p));
}

int64_t read_attr_i64(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  if (attr_elements(a) != 1) fail("HDF5 attribute " + name + " should hold one value");
  int64_t v = 0;
  H5_CHECK(H5Aread(a, H5T_NATIVE_INT64, &v));
  return v;
}

uint32_t read_attr_u32(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  if (attr_elements(a) != 1) fail("HDF5 attribute " + name + " should hold one value");
  uint32_t v = 0;
  H5_CHECK(H5Aread(a, H5T_NATIVE_UINT32, &v));
  return v;
}

std::vector<int64_t> read_attr_i64_array(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  std::vector<int64_t> v(static_cast<size_t>(attr_elements(a)));
  if (!v.empty()) H5_CHECK(H5Aread(a, H5T_NATIVE_INT64, v.data()));
  return v;
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  if (attr_elements(a) != 1) fail("HDF5 attribute " + name + " should hold one string");
  Handle type = string_type();
  char* p = nullptr;
  H5_CHECK(H5Aread(a, type, &p));
  std::string out = p ? p : "";
  H5free_memory(p);
  return out;
}

void write_string(hid_t loc, const std::string& name, const std::string& value) {
  Handle type = string_type();
  Handle space = scalar_space();
  Handle d = create_dataset(loc, name, type, space);
  const char* p = value.c_str();
  H5_CHECK(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p));
}

std::string read_string(hid_t loc, const std::string& name) {
  const auto all = read_strings(loc, name);
  if (all.size() != 1) fail("HDF5 dataset " + name + " should hold one string");
  return all[0];
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  Handle type = string_type();
  Handle space = make_space({static_cast<int64_t>(values.size())});
  Handle d = create_dataset(loc, name, type, space);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (!ptrs.empty()) H5_CHECK(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()));
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name) {
  Handle d = open_dataset(loc, name);
  Handle file_type = checked(H5Dget_type(d), H5Tclose, "H5Dget_type " + name);
  if (H5Tget_class(file_type) != H5T_STRING) fail("HDF5 dataset " + name + " is not a string");
  Handle type = string_type();
  Handle space = checked(H5Dget_space(d), H5Sclose, "H5Dget_space " + name);
  std::vector<char*> ptrs(static_cast<size_t>(dataset_elements(d)), nullptr);
  std::vector<std::string> out;
  if (ptrs.empty()) return out;
  H5_CHECK(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()));
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  H5_CHECK(H5Dvlen_reclaim(type, space, H5P_DEFAULT, ptrs.data()));
  return out;
}

void write_bytes(hid_t loc, const std::string& name, const std::vector<uint8_t>& bytes) {
  write_numeric(loc, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, {static_cast<int64_t>(bytes.size())},
                bytes.data());
}

std::vector<uint8_t> read_bytes(hid_t loc, const std::string& name) {
  return read_numeric<uint8_t>(loc, name, H5T_NATIVE_UINT8);
}

void write_i64s(hid_t loc, const std::string& name, const std::vector<int64_t>& dims,
                const std::vector<int64_t>& values) {
  write_numeric(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, dims, values.data());
}

std::vector<int64_t> read_i64s(hid_t loc, const std::string& name) {
  return read_numeric<int64_t>(loc, name, H5T_NATIVE_INT64);
}

void write_u32s(hid_t loc, const std::string& name, const std::vector<uint32_t>& values) {
  write_numeric(loc, name, H5T_STD_U32LE, H5T_NATIVE_UINT32, {static_cast<int64_t>(values.size())},
                values.data());
}

std::vector<uint32_t> read_u32s(hid_t loc, const std::string& name) {
  return read_numeric<uint32_t>(loc, name, H5T_NATIVE_UINT32);
}

void write_metadata(hid_t loc, const std::string& group, const Metadata& metadata) {
  Handle g = create_group(loc, group);
  for (const auto& [key, value] : metadata) {
    std::visit(
        [&, &key = key](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            write_numeric(g, key, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &v);
          } else if constexpr (std::is_same_v<T, double>) {
            write_numeric(g, key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            write_string(g, key, v);
          } else {
            write_bytes(g, key, v);
          }
        },
        value);
  }
}

Metadata read_metadata(hid_t loc, const std::string& group) {
  Handle g = open_group(loc, group);
  std::vector<std::string> keys;
  H5_CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link_name, &keys));
  Metadata out;
  for (const auto& key : keys) {
    Handle d = open_dataset(g, key);
    Handle type = checked(H5Dget_type(d), H5Tclose, "H5Dget_type " + key);
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING) {
      out[key] = read_string(g, key);
    } else if (cls == H5T_FLOAT) {
      out[key] = read_scalar<double>(g, key, H5T_NATIVE_DOUBLE);
    } else if (cls == H5T_INTEGER && H5Tget_size(type) == 1) {
      out[key] = read_bytes(g, key);
    } else if (cls == H5T_INTEGER) {
      out[key] = read_scalar<int64_t>(g, key, H5T_NATIVE_INT64);
    } else {
      fail("metadata entry " + group + "/" + key +
           " has a type that is not int64, double, string or bytes");
    }
  }
  return out;
}

}  // namespace shardlm::h5
