// GGUF v3 files, llama.cpp's model format (spec: ggml's docs/gguf.md,
// https://github.com/ggml-org/ggml/blob/master/docs/gguf.md). Little-endian:
//   magic "GGUF", u32 version 3, u64 tensor count, u64 metadata count,
//   metadata: (string key, u32 value type, value)...  strings are u64 length + UTF-8 bytes,
//             arrays u32 element type + u64 count + elements,
//   tensor infos: (string name, u32 n_dims, u64 ne[n_dims] fastest dimension first,
//                  u32 ggml type, u64 offset into the data section, a multiple of the alignment),
//   padding to general.alignment (32 by default), then the tensor data, each tensor padded.
// A row-major [rows, cols] tensor (PyTorch order) is ne = [cols, rows]: the same bytes.
// Q8_0 (ggml-quants.c quantize_row_q8_0_ref): blocks of 32 consecutive elements of a row, each
// an f16 scale d = max|x| / 127 and 32 int8 q = round(x / d); x ~ d * q.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace shardlm {

enum class GgufType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8, kBF16 = 30 };
const char* gguf_type_name(GgufType type);
// Bytes of n elements (n a multiple of 32 for Q8_0).
uint64_t gguf_bytes(GgufType type, int64_t n);
constexpr int64_t kQ8BlockElements = 32;
constexpr uint32_t kGgufDefaultAlignment = 32;

// A metadata value: u32, i32, f32, bool, string, or arrays of strings, f32 or i32 (what
// llama.cpp's gpt2 and llama loaders read).
using GgufValue = std::variant<uint32_t, int32_t, float, bool, std::string,
                               std::vector<std::string>, std::vector<float>, std::vector<int32_t>>;
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major (PyTorch order); GGUF's ne is this reversed
  GgufType type = GgufType::kF32;
  uint64_t offset = 0;  // into the data section
  int64_t numel() const;
};

class GgufWriter {
 public:
  // Writes <path>.tmp (header, metadata, tensor infos); finish() commits it to `path`.
  // Tensors are written in `tensors` order; a Q8_0 tensor needs rows of a multiple of 32.
  GgufWriter(std::filesystem::path path, const GgufMetadata& metadata,
             std::vector<GgufTensorInfo> tensors);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // The next n elements of the current tensor, converted to its type (for Q8_0, whole blocks).
  void append(const float* values, int64_t n);
  void finish();

 private:
  void write(const void* bytes, size_t n);
  void pad_to(uint64_t alignment);

  std::filesystem::path path_, tmp_;
  std::vector<GgufTensorInfo> tensors_;
  size_t current_ = 0;       // tensor being written
  int64_t written_ = 0;      // of its elements
  uint64_t position_ = 0;    // bytes written to the file
  uint64_t data_start_ = 0;  // where the data section begins
  std::FILE* file_ = nullptr;
};

// Reads and validates a GGUF file: header, every metadata value, every tensor info; refuses,
// naming the file and the field, a wrong magic or version, a string or array running past the
// end, an unknown type, and tensor data that does not fit the file (truncated).
class GgufReader {
 public:
  explicit GgufReader(std::filesystem::path path);
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufMetadata& metadata() const { return metadata_; }
  const GgufValue& value(const std::string& key) const;  // throws naming the key if absent
  const GgufTensorInfo* find(const std::string& name) const;
  // The whole tensor as f32 (Q8_0 dequantized).
  std::vector<float> read(const GgufTensorInfo& t) const;

 private:
  std::filesystem::path path_;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t data_start_ = 0;
};

}  // namespace shardlm
