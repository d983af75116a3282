#include "convert/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "convert/file_shape.h"
#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is written from memory as is");

namespace {

// The spec caps the header at 100 MB so that a corrupt length cannot exhaust memory.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

uint64_t entry_bytes(const SafetensorsEntry& e) {
  return static_cast<uint64_t>(e.numel()) * dtype_size(e.dtype);
}

std::string header_json(const std::vector<SafetensorsEntry>& entries,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json j;
  if (!metadata.empty()) j["__metadata__"] = metadata;
  for (const SafetensorsEntry& e : entries)
    j[e.name] = {{"dtype", safetensors_dtype_name(e.dtype)},
                 {"shape", e.shape},
                 {"data_offsets", {e.begin, e.end}}};
  std::string text = j.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  return text;
}

}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "F32";
    case DType::BF16:
      return "BF16";
    case DType::F16:
      return "F16";
    default:
      fail(std::string("safetensors export: unsupported dtype ") + dtype_name(dtype));
  }
}

DType safetensors_dtype(const std::string& name, const std::string& where) {
  if (name == "F32") return DType::F32;
  if (name == "BF16") return DType::BF16;
  if (name == "F16") return DType::F16;
  fail(where + ": dtype '" + name + "' is not supported (shardlm reads F32, BF16 and F16)");
}

SafetensorsWriter::SafetensorsWriter(fs::path path, std::vector<SafetensorsEntry> entries,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), entries_(std::move(entries)) {
  uint64_t offset = 0;
  for (SafetensorsEntry& e : entries_) {
    e.begin = offset;
    e.end = offset += entry_bytes(e);
  }
  const std::string header = header_json(entries_, metadata);
  header_bytes_ = 8 + header.size();
  tmp_ = path_;
  tmp_ += ".tmp";
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (!file_) fail("cannot create " + tmp_.string() + ": " + std::strerror(errno));
  const uint64_t n = header.size();
  if (std::fwrite(&n, 8, 1, file_) != 1 || std::fwrite(header.data(), 1, n, file_) != n)
    fail("cannot write the header of " + tmp_.string() + ": " + std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
  if (!file_) return;
  std::fclose(file_);  // an unfinished file is not left behind
  std::error_code ec;
  fs::remove(tmp_, ec);
}

void SafetensorsWriter::append(const void* bytes, size_t n) {
  const uint64_t total = entries_.empty() ? 0 : entries_.back().end;
  SHARDLM_CHECK(written_ + n <= total, "safetensors writer: more bytes than the tensors hold");
  if (std::fwrite(bytes, 1, n, file_) != n)
    fail("cannot write " + tmp_.string() + ": " + std::strerror(errno));
  written_ += n;
}

uint64_t SafetensorsWriter::file_size() const {
  return header_bytes_ + (entries_.empty() ? 0 : entries_.back().end);
}

void SafetensorsWriter::finish() {
  const uint64_t total = entries_.empty() ? 0 : entries_.back().end;
  SHARDLM_CHECK(written_ == total, "safetensors writer: " + tmp_.string() + " got " +
                                       std::to_string(written_) + " of " + std::to_string(total) +
                                       " tensor bytes");
  const bool ok = std::fflush(file_) == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (!ok) fail("cannot write " + tmp_.string() + ": " + std::strerror(errno));
  commit_file(tmp_, path_);
}

SafetensorsReader::SafetensorsReader(fs::path path) : path_(std::move(path)) {
  const std::string where = path_.string();
  file_.reset(std::fopen(path_.c_str(), "rb"));
  if (!file_) fail("cannot open " + where + ": " + std::strerror(errno));
  std::error_code ec;
  const uint64_t size = fs::file_size(path_, ec);
  uint64_t n = 0;
  if (ec || size < 8 || std::fread(&n, 8, 1, file_.get()) != 1)
    fail(where + ": not a safetensors file (shorter than its 8-byte header length)");
  if (n > kMaxHeaderBytes || 8 + n > size)
    fail(where + ": header length " + std::to_string(n) + " runs past the end of the file (" +
         std::to_string(size) + " bytes): truncated or not safetensors");
  std::string text(n, '\0');
  if (std::fread(text.data(), 1, n, file_.get()) != n) fail(where + ": cannot read its header");
  data_start_ = 8 + n;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(where + ": the header is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string field = where + ": tensor '" + it.key() + "'";
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(where + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const auto& t = *it;
    if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") ||
        !t.contains("data_offsets") || !t["dtype"].is_string() || !t["shape"].is_array() ||
        !t["data_offsets"].is_array() || t["data_offsets"].size() != 2)
      fail(field + ": needs dtype (string), shape (array) and data_offsets ([begin, end])");
    SafetensorsEntry e;
    e.name = it.key();
    e.dtype = safetensors_dtype(t["dtype"].get<std::string>(), field);
    for (const auto& d : t["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        fail(field + ": shape holds a value that is not a non-negative integer");
      e.shape.push_back(d.get<int64_t>());
    }
    (void)checked_numel(e.shape, size, field);  // entry_bytes(e) below cannot overflow
    for (const auto& o : t["data_offsets"])
      if (!o.is_number_unsigned()) fail(field + ": data_offsets are not non-negative integers");
    e.begin = t["data_offsets"][0].get<uint64_t>();
    e.end = t["data_offsets"][1].get<uint64_t>();
    if (e.end < e.begin || e.end - e.begin != entry_bytes(e))
      fail(field + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] do not hold its shape's " + std::to_string(entry_bytes(e)) + " bytes");
    if (e.end > size - data_start_)
      fail(field + ": its bytes end at " + std::to_string(e.end) + " of the data section but the " +
           "file has " + std::to_string(size - data_start_) + " after the header: truncated");
    entries_.push_back(std::move(e));
  }
  std::vector<const SafetensorsEntry*> order;
  for (const auto& e : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->begin < order[i - 1]->end)
      fail(where + ": tensors '" + order[i - 1]->name + "' and '" + order[i]->name +
           "' overlap in data_offsets");
}

const SafetensorsEntry* SafetensorsReader::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

void SafetensorsReader::read(const SafetensorsEntry& e, int64_t first, int64_t n,
                             float* dest) const {
  SHARDLM_CHECK(first >= 0 && n >= 0 && first + n <= e.numel(),
                "safetensors read past the end of " + e.name);
  const size_t es = dtype_size(e.dtype);
  std::vector<uint8_t> raw(static_cast<size_t>(n) * es);
  const uint64_t at = data_start_ + e.begin + static_cast<uint64_t>(first) * es;
  if (std::fseek(file_.get(), static_cast<long>(at), SEEK_SET) != 0 ||
      std::fread(raw.data(), 1, raw.size(), file_.get()) != raw.size())
    fail(path_.string() + ": cannot read tensor '" + e.name + "'");
  convert_to_float(e.dtype, raw.data(), dest, static_cast<size_t>(n));
}

}  // namespace shardlm
