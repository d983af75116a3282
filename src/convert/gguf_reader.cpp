// GgufReader (convert/gguf.h): parses every field with bounds checks against the file size, so
// that a truncated or corrupt file is refused naming the field, never read past its end.
#include <cstring>
#include <memory>

#include "convert/file_shape.h"
#include "convert/gguf.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

// Sequential little-endian reads that refuse to run past the end of the file.
class Decoder {
 public:
  Decoder(std::FILE* f, uint64_t size, std::string where)
      : f_(f), size_(size), where_(std::move(where)) {}
  uint64_t position() const { return pos_; }
  const std::string& where() const { return where_; }
  // Refuses, naming `field`, when fewer than n bytes are left: before anything is allocated
  // for them.
  void require(uint64_t n, const std::string& field) const {
    if (n > size_ - pos_)
      fail(where_ + ": " + field + " runs past the end of the file at byte " +
           std::to_string(pos_) + " (" + std::to_string(size_) + " bytes): truncated");
  }
  void bytes(void* out, uint64_t n, const std::string& field) {
    require(n, field);
    if (std::fread(out, 1, n, f_) != n) fail(where_ + ": cannot read " + field);
    pos_ += n;
  }
  template <typename T>
  T scalar(const std::string& field) {
    T v{};
    bytes(&v, sizeof v, field);
    return v;
  }
  std::string string(const std::string& field) {
    const auto n = scalar<uint64_t>(field + " (length)");
    require(n, field);
    std::string s(n, '\0');
    bytes(s.data(), n, field);
    return s;
  }

 private:
  std::FILE* f_;
  uint64_t size_, pos_ = 0;
  std::string where_;
};

enum : uint32_t {
  kU8 = 0,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kString,
  kArray,
  kU64,
  kI64,
  kF64
};

uint64_t scalar_size(uint32_t type, const std::string& field) {
  switch (type) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
  }
  fail(field + ": unknown metadata value type " + std::to_string(type));
}

// The value of one metadata entry; types llama.cpp's loaders do not need here are skipped.
GgufValue read_value(Decoder& d, uint32_t type, const std::string& field) {
  switch (type) {
    case kU32:
      return d.scalar<uint32_t>(field);
    case kI32:
      return d.scalar<int32_t>(field);
    case kF32:
      return d.scalar<float>(field);
    case kBool:
      return d.scalar<uint8_t>(field) != 0;
    case kString:
      return d.string(field);
    case kArray: {
      const auto et = d.scalar<uint32_t>(field + " (element type)");
      const auto n = d.scalar<uint64_t>(field + " (element count)");
      if (et == kString) {
        std::vector<std::string> v;
        for (uint64_t i = 0; i < n; ++i)
          v.push_back(d.string(field + "[" + std::to_string(i) + "]"));
        return v;
      }
      const uint64_t es = scalar_size(et, d.where() + ": " + field);
      if (n > UINT64_MAX / es) d.require(UINT64_MAX, field);
      d.require(n * es, field);
      std::vector<uint8_t> raw(n * es);
      d.bytes(raw.data(), raw.size(), field);
      if (et == kF32)
        return std::vector<float>(reinterpret_cast<float*>(raw.data()),
                                  reinterpret_cast<float*>(raw.data()) + n);
      if (et == kI32)
        return std::vector<int32_t>(reinterpret_cast<int32_t*>(raw.data()),
                                    reinterpret_cast<int32_t*>(raw.data()) + n);
      return std::vector<int32_t>();  // other element types: skipped
    }
  }
  std::vector<uint8_t> skip(scalar_size(type, d.where() + ": " + field));
  d.bytes(skip.data(), skip.size(), field);
  return uint32_t{0};
}

GgufType tensor_type(uint32_t t, const std::string& field) {
  switch (t) {
    case 0:
      return GgufType::kF32;
    case 1:
      return GgufType::kF16;
    case 8:
      return GgufType::kQ8_0;
    case 30:
      return GgufType::kBF16;
  }
  fail(field + ": ggml type " + std::to_string(t) +
       " is not one shardlm reads (f32, f16, bf16, q8_0)");
}

}  // namespace

GgufReader::GgufReader(fs::path path) : path_(std::move(path)) {
  const std::string where = path_.string();
  UniqueFile f(std::fopen(path_.c_str(), "rb"));
  if (!f) fail("cannot open " + where + ": " + std::strerror(errno));
  std::error_code ec;
  const uint64_t size = fs::file_size(path_, ec);
  if (ec) fail("cannot stat " + where);
  Decoder d(f.get(), size, where);
  char magic[4];
  d.bytes(magic, 4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) fail(where + ": not a GGUF file (magic is not 'GGUF')");
  const auto version = d.scalar<uint32_t>("version");
  if (version != 3)
    fail(where + ": GGUF version " + std::to_string(version) + " (shardlm reads 3)");
  const auto n_tensors = d.scalar<uint64_t>("tensor count");
  const auto n_kv = d.scalar<uint64_t>("metadata count");
  uint32_t alignment = kGgufDefaultAlignment;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = d.string("metadata key " + std::to_string(i));
    const auto type = d.scalar<uint32_t>("metadata '" + key + "' type");
    GgufValue v = read_value(d, type, "metadata '" + key + "'");
    if (key == "general.alignment") {
      if (!std::holds_alternative<uint32_t>(v) || std::get<uint32_t>(v) == 0)
        fail(where + ": general.alignment is not a positive u32");
      alignment = std::get<uint32_t>(v);
    }
    metadata_.emplace_back(key, std::move(v));
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = d.string("tensor info " + std::to_string(i) + " name");
    const std::string field = "tensor '" + t.name + "'";
    const auto n_dims = d.scalar<uint32_t>(field + " n_dims");
    if (n_dims == 0 || n_dims > 4)
      fail(where + ": " + field + " has " + std::to_string(n_dims) + " dimensions");
    t.shape.resize(n_dims);
    for (uint32_t k = 0; k < n_dims; ++k)
      t.shape[n_dims - 1 - k] = static_cast<int64_t>(d.scalar<uint64_t>(field + " ne"));
    t.type = tensor_type(d.scalar<uint32_t>(field + " type"), where + ": " + field);
    (void)checked_numel(t.shape, size, where + ": " + field);  // ne above 2^63 is negative
    if (t.type == GgufType::kQ8_0 && t.shape.back() % kQ8BlockElements != 0)
      fail(where + ": " + field + " is q8_0 with rows of " + std::to_string(t.shape.back()) +
           " elements, not whole blocks of " + std::to_string(kQ8BlockElements));
    t.offset = d.scalar<uint64_t>(field + " offset");
    if (t.offset % alignment != 0) fail(where + ": " + field + " offset is not aligned");
    tensors_.push_back(std::move(t));
  }
  data_start_ = (d.position() + alignment - 1) / alignment * alignment;
  for (const GgufTensorInfo& t : tensors_) {
    const uint64_t bytes = gguf_bytes(t.type, t.numel());
    const uint64_t room = data_start_ < size ? size - data_start_ : 0;  // the data section's
    if (t.offset > room || bytes > room - t.offset)
      fail(where + ": tensor '" + t.name + "' data (" + std::to_string(bytes) +
           " bytes at offset " + std::to_string(t.offset) + ") runs past the " +
           std::to_string(room) + " bytes of the data section: truncated");
  }
}

const GgufValue& GgufReader::value(const std::string& key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return v;
  fail(path_.string() + ": metadata key '" + key + "' is missing");
}

const GgufTensorInfo* GgufReader::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<float> GgufReader::read(const GgufTensorInfo& t) const {
  UniqueFile f(std::fopen(path_.c_str(), "rb"));
  std::vector<uint8_t> raw(gguf_bytes(t.type, t.numel()));
  if (!f || std::fseek(f.get(), static_cast<long>(data_start_ + t.offset), SEEK_SET) != 0 ||
      std::fread(raw.data(), 1, raw.size(), f.get()) != raw.size())
    fail(path_.string() + ": cannot read tensor '" + t.name + "'");
  const auto n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  if (t.type == GgufType::kQ8_0) {
    for (size_t b = 0; b < n / kQ8BlockElements; ++b) {
      f16 d;
      std::memcpy(&d.bits, raw.data() + b * 34, 2);
      const auto* q = reinterpret_cast<const int8_t*>(raw.data() + b * 34 + 2);
      for (int j = 0; j < kQ8BlockElements; ++j)
        out[b * kQ8BlockElements + j] = f16_to_float(d) * static_cast<float>(q[j]);
    }
    return out;
  }
  const DType dtype = t.type == GgufType::kF32   ? DType::F32
                      : t.type == GgufType::kF16 ? DType::F16
                                                 : DType::BF16;
  convert_to_float(dtype, raw.data(), out.data(), n);
  return out;
}

}  // namespace shardlm
