// Small HDF5 helpers for the checkpoint files: an owning handle and typed attribute/dataset
// access. Every failure throws shardlm::Error (via H5_CHECK or fail) naming the object.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "core/dtype.h"

namespace shardlm::h5 {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  void reset();
  // Closes now and reports a failure (a plain destructor cannot); used for files being written.
  void close_checked();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Turns off HDF5's automatic printing of error stacks while it lives: failures become
// exceptions that carry the stack (hdf5_error_string) instead of noise on stderr.
class QuietErrors {
 public:
  QuietErrors();
  ~QuietErrors();
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// Files. create_file truncates; both use the checksummed (1.8+) object header format.
Handle create_file(const std::filesystem::path& path);
Handle open_file_read(const std::filesystem::path& path);
Handle open_dataset(hid_t loc, const std::string& path);
Handle create_group(hid_t loc, const std::string& name);
Handle open_group(hid_t loc, const std::string& name);
bool link_exists(hid_t loc, const std::string& name);

// Dataspace of `dims` (scalar when empty).
Handle make_space(const std::vector<int64_t>& dims);
// The dataset's dimensions.
std::vector<int64_t> dataset_dims(hid_t dataset);
// Selects the hyperslab (offset, count) in `space` (replacing any selection).
void select_hyperslab(hid_t space, const std::vector<int64_t>& offset,
                      const std::vector<int64_t>& count);

// The file type of tensor data stored as `dtype`: H5T_IEEE_F32LE for F32; for F16 and BF16 a
// 16-bit little-endian IEEE-style float built field by field from it (HDF5 1.10 predefines no
// half type): f16 = sign 15, exponent 10..14 (bias 15), mantissa 0..9, which h5py reads as
// numpy float16; bf16 = sign 15, exponent 7..14 (bias 127), mantissa 0..6, the top half of an
// f32, which h5py reads as float32. Used as the memory type too, so data moves as raw bits.
// Throws naming the dtype for any other.
Handle tensor_type(DType dtype);
// Whether `type` (a dataset's) is tensor_type(dtype).
bool is_tensor_type(hid_t type, DType dtype);

// Attributes.
bool has_attr(hid_t obj, const std::string& name);
void write_attr_i64(hid_t obj, const std::string& name, int64_t value);
void write_attr_u32(hid_t obj, const std::string& name, uint32_t value);
void write_attr_i64_array(hid_t obj, const std::string& name, const std::vector<int64_t>& values);
void write_attr_string(hid_t obj, const std::string& name, const std::string& value);
int64_t read_attr_i64(hid_t obj, const std::string& name);
uint32_t read_attr_u32(hid_t obj, const std::string& name);
std::vector<int64_t> read_attr_i64_array(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name);

// Small datasets (manifest columns, metadata).
void write_string(hid_t loc, const std::string& name, const std::string& value);  // scalar
std::string read_string(hid_t loc, const std::string& name);
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);
std::vector<std::string> read_strings(hid_t loc, const std::string& name);
void write_bytes(hid_t loc, const std::string& name, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_bytes(hid_t loc, const std::string& name);
// dims.size() == 1 or 2; values row-major.
void write_i64s(hid_t loc, const std::string& name, const std::vector<int64_t>& dims,
                const std::vector<int64_t>& values);
std::vector<int64_t> read_i64s(hid_t loc, const std::string& name);
void write_u32s(hid_t loc, const std::string& name, const std::vector<uint32_t>& values);
std::vector<uint32_t> read_u32s(hid_t loc, const std::string& name);

// Metadata as a group with one dataset per key: int64 / double scalars, UTF-8 strings, uint8
// arrays for byte strings.
void write_metadata(hid_t loc, const std::string& group, const Metadata& metadata);
Metadata read_metadata(hid_t loc, const std::string& group);

}  // namespace shardlm::h5
