#include "convert/gguf.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "GGUF is written from memory as is");

namespace {

constexpr uint32_t kGgufVersion = 3;
// Metadata value types of the spec.
enum : uint32_t { kU32 = 4, kI32 = 5, kF32v = 6, kBool = 7, kString = 8, kArray = 9 };

// Appends GGUF's little-endian encodings to a byte string (the header is built in memory).
struct Encoder {
  std::string out;
  template <typename T>
  void scalar(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void string(const std::string& s) {
    scalar<uint64_t>(s.size());
    out += s;
  }
  template <typename T>
  void array(uint32_t type, const std::vector<T>& values) {
    scalar<uint32_t>(kArray);
    scalar<uint32_t>(type);
    scalar<uint64_t>(values.size());
    for (const T& v : values) {
      if constexpr (std::is_same_v<T, std::string>)
        string(v);
      else
        scalar(v);
    }
  }
  void value(const GgufValue& v) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, uint32_t>) {
            scalar<uint32_t>(kU32), scalar(x);
          } else if constexpr (std::is_same_v<T, int32_t>) {
            scalar<uint32_t>(kI32), scalar(x);
          } else if constexpr (std::is_same_v<T, float>) {
            scalar<uint32_t>(kF32v), scalar(x);
          } else if constexpr (std::is_same_v<T, bool>) {
            scalar<uint32_t>(kBool), scalar<uint8_t>(x ? 1 : 0);
          } else if constexpr (std::is_same_v<T, std::string>) {
            scalar<uint32_t>(kString), string(x);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            array(kString, x);
          } else if constexpr (std::is_same_v<T, std::vector<float>>) {
            array(kF32v, x);
          } else {
            array(kI32, x);
          }
        },
        v);
  }
};

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

// One Q8_0 block (ggml's block_q8_0): f16 scale, 32 int8 quants.
void quantize_q8_0(const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (int j = 0; j < kQ8BlockElements; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const f16 scale = f16_from_float(d);
  std::memcpy(out, &scale.bits, 2);
  for (int j = 0; j < kQ8BlockElements; ++j)
    out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[j] * id)));
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kF32:
      return "f32";
    case GgufType::kF16:
      return "f16";
    case GgufType::kQ8_0:
      return "q8_0";
    case GgufType::kBF16:
      return "bf16";
  }
  return "unknown";
}

uint64_t gguf_bytes(GgufType type, int64_t n) {
  switch (type) {
    case GgufType::kF32:
      return static_cast<uint64_t>(n) * 4;
    case GgufType::kF16:
    case GgufType::kBF16:
      return static_cast<uint64_t>(n) * 2;
    case GgufType::kQ8_0:
      return static_cast<uint64_t>(n / kQ8BlockElements) * 34;
  }
  fail("GGUF: unknown tensor type " + std::to_string(static_cast<uint32_t>(type)));
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

GgufWriter::GgufWriter(fs::path path, const GgufMetadata& metadata,
                       std::vector<GgufTensorInfo> tensors)
    : path_(std::move(path)), tensors_(std::move(tensors)) {
  Encoder e;
  e.out = "GGUF";
  e.scalar<uint32_t>(kGgufVersion);
  e.scalar<uint64_t>(tensors_.size());
  e.scalar<uint64_t>(metadata.size() + 1);
  e.string("general.alignment");
  e.value(GgufValue(kGgufDefaultAlignment));
  for (const auto& [key, value] : metadata) {
    e.string(key);
    e.value(value);
  }
  uint64_t offset = 0;
  for (GgufTensorInfo& t : tensors_) {
    if (t.type == GgufType::kQ8_0 && (t.shape.empty() || t.shape.back() % kQ8BlockElements != 0))
      fail("GGUF: tensor " + t.name + " cannot be q8_0: its rows are not a multiple of 32");
    t.offset = offset;
    offset = align_up(offset + gguf_bytes(t.type, t.numel()), kGgufDefaultAlignment);
    e.string(t.name);
    e.scalar<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) e.scalar<uint64_t>(*d);
    e.scalar<uint32_t>(static_cast<uint32_t>(t.type));
    e.scalar<uint64_t>(t.offset);
  }
  tmp_ = path_;
  tmp_ += ".tmp";
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (!file_) fail("cannot create " + tmp_.string() + ": " + std::strerror(errno));
  write(e.out.data(), e.out.size());
  pad_to(kGgufDefaultAlignment);
  data_start_ = position_;
}

GgufWriter::~GgufWriter() {
  if (!file_) return;
  std::fclose(file_);
  std::error_code ec;
  fs::remove(tmp_, ec);
}

void GgufWriter::write(const void* bytes, size_t n) {
  if (std::fwrite(bytes, 1, n, file_) != n)
    fail("cannot write " + tmp_.string() + ": " + std::strerror(errno));
  position_ += n;
}

void GgufWriter::pad_to(uint64_t alignment) {
  static const char zeros[64] = {};
  write(zeros, align_up(position_, alignment) - position_);
}

void GgufWriter::append(const float* values, int64_t n) {
  SHARDLM_CHECK(current_ < tensors_.size(), "GGUF writer: more data than tensors");
  const GgufTensorInfo& t = tensors_[current_];
  SHARDLM_CHECK(written_ + n <= t.numel(), "GGUF writer: more data than tensor " + t.name);
  std::vector<uint8_t> bytes(gguf_bytes(t.type, n));
  if (t.type == GgufType::kQ8_0) {
    SHARDLM_CHECK(n % kQ8BlockElements == 0, "GGUF writer: q8_0 data in whole blocks");
    for (int64_t b = 0; b < n / kQ8BlockElements; ++b)
      quantize_q8_0(values + b * kQ8BlockElements, bytes.data() + b * 34);
  } else {
    const DType dtype = t.type == GgufType::kF32   ? DType::F32
                        : t.type == GgufType::kF16 ? DType::F16
                                                   : DType::BF16;
    convert_from_float(values, dtype, bytes.data(), static_cast<size_t>(n));
  }
  write(bytes.data(), bytes.size());
  written_ += n;
  if (written_ == t.numel()) {  // the next tensor starts aligned
    pad_to(kGgufDefaultAlignment);
    SHARDLM_CHECK(
        current_ + 1 == tensors_.size() || position_ == data_start_ + tensors_[current_ + 1].offset,
        "GGUF writer: tensor offsets out of step");
    ++current_;
    written_ = 0;
  }
}

void GgufWriter::finish() {
  SHARDLM_CHECK(current_ == tensors_.size(),
                "GGUF writer: " + tmp_.string() + " is missing tensor data");
  const bool ok = std::fflush(file_) == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (!ok) fail("cannot write " + tmp_.string() + ": " + std::strerror(errno));
  commit_file(tmp_, path_);
}

}  // namespace shardlm
