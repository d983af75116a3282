#include "train/tensorboard_log.h"

#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstring>

#include "core/checksum.h"
#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace {

// Protobuf wire format (little-endian fixed-width fields, base-128 varints).
enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, int field, WireType type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | type);
}

template <typename T>
void put_little_endian(std::string& out, T value) {
  static_assert(std::endian::native == std::endian::little, "TFRecord fields are little-endian");
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event { wall_time = 1, step = 2 } followed by file_version = 3 or summary = 5 (`what`).
std::string encode_event(int64_t step, int what_field, const std::string& what) {
  const double wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string event;
  put_key(event, 1, kFixed64);
  put_little_endian(event, wall_time);
  put_key(event, 2, kVarint);
  put_varint(event, static_cast<uint64_t>(step));
  put_bytes(event, what_field, what);
  return event;
}

// Summary { repeated Value value = 1 }, Value { tag = 1, simple_value = 2 }.
std::string encode_summary(const Scalars& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    put_bytes(v, 1, tag);
    put_key(v, 2, kFixed32);
    put_little_endian(v, static_cast<float>(value));
    put_bytes(summary, 1, v);
  }
  return summary;
}

std::string event_file_name() {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  // "tfevents" in the name is what TensorBoard looks for; the pid keeps two starts apart.
  return "events.out.tfevents." + std::to_string(seconds) + "." + host + "." +
         std::to_string(getpid());
}

}  // namespace

uint32_t masked_crc32c(const void* data, size_t n_bytes) {
  const uint32_t crc = crc32c(data, n_bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardLog::TensorBoardLog(const std::filesystem::path& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create the TensorBoard folder " + dir.string() + ": " + ec.message());
  path_ = dir / event_file_name();
  file_.open(path_, std::ios::binary | std::ios::app);
  if (!file_) fail("cannot open TensorBoard event file " + path_.string());
  write_record(encode_event(0, 3, "brain.Event:2"));
}

void TensorBoardLog::scalars(int64_t step, const Scalars& values) {
  if (!file_.is_open() || values.empty()) return;
  write_record(encode_event(step, 5, encode_summary(values)));
}

void TensorBoardLog::write_record(const std::string& payload) {
  std::string record;
  put_little_endian(record, static_cast<uint64_t>(payload.size()));
  put_little_endian(record, masked_crc32c(record.data(), sizeof(uint64_t)));
  record += payload;
  put_little_endian(record, masked_crc32c(payload.data(), payload.size()));
  file_.write(record.data(), static_cast<std::streamsize>(record.size()));
  file_.flush();
  if (!file_) fail("cannot write TensorBoard event file " + path_.string());
}

void TensorBoardLog::sync() {
  if (file_.is_open()) fsync_path(path_);
}

}  // namespace shardlm
