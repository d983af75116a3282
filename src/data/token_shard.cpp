#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/checksum.h"
#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

static_assert(std::endian::native == std::endian::little,
              "token shards store little-endian ids and are read in place by memory mapping");

namespace {

constexpr size_t kWriteBufferBytes = 1 << 20;
constexpr size_t kHeaderCrcOffset = 60;

template <typename T>
void store_le(unsigned char* dst, T value) {
  std::memcpy(dst, &value, sizeof(T));
}

template <typename T>
T load_le(const unsigned char* src) {
  T value;
  std::memcpy(&value, src, sizeof(T));
  return value;
}

void encode_header(const TokenShardHeader& h, unsigned char* out /*[64]*/) {
  std::memset(out, 0, kTokenShardHeaderBytes);
  std::memcpy(out, kTokenShardMagic, 8);
  store_le<uint32_t>(out + 8, h.version);
  store_le<uint32_t>(out + 12, h.token_bytes);
  store_le<uint64_t>(out + 16, h.token_count);
  store_le<uint64_t>(out + 24, h.text_bytes);
  store_le<uint64_t>(out + 32, h.tokenizer_fingerprint);
  store_le<uint32_t>(out + 40, h.vocab_size);
  store_le<uint32_t>(out + 44, h.payload_crc32c);
  store_le<uint64_t>(out + 48, h.document_count);
  store_le<uint32_t>(out + kHeaderCrcOffset, crc32c(out, kHeaderCrcOffset));
}

std::string hex64(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string errno_text() {
  return std::strerror(errno);
}

template <typename T>
uint32_t max_token(const unsigned char* payload, uint64_t n) {
  const auto* ids = reinterpret_cast<const T*>(payload);
  T m = 0;
  for (uint64_t i = 0; i < n; ++i) m = std::max(m, ids[i]);
  return m;
}

}  // namespace

uint32_t token_bytes_for_vocab(uint64_t vocab_size) {
  return vocab_size <= 65536 ? 2 : 4;
}

TokenShardHeader parse_token_shard_header(const unsigned char* bytes, size_t n_bytes,
                                          const std::string& path) {
  const std::string where = "token shard '" + path + "': ";
  if (n_bytes < kTokenShardHeaderBytes)
    fail(where + "truncated: the file has " + std::to_string(n_bytes) +
         " bytes, the header alone needs " + std::to_string(kTokenShardHeaderBytes));
  if (std::memcmp(bytes, kTokenShardMagic, 8) != 0)
    fail(where + "bad magic: not a shardlm token shard");
  TokenShardHeader h;
  h.version = load_le<uint32_t>(bytes + 8);
  if (h.version != kTokenShardVersion)
    fail(where + "unsupported format version " + std::to_string(h.version) +
         " (this build reads version " + std::to_string(kTokenShardVersion) + ")");
  const uint32_t stored_crc = load_le<uint32_t>(bytes + kHeaderCrcOffset);
  if (crc32c(bytes, kHeaderCrcOffset) != stored_crc)
    fail(where + "header checksum mismatch: the header is corrupted");
  h.token_bytes = load_le<uint32_t>(bytes + 12);
  h.token_count = load_le<uint64_t>(bytes + 16);
  h.text_bytes = load_le<uint64_t>(bytes + 24);
  h.tokenizer_fingerprint = load_le<uint64_t>(bytes + 32);
  h.vocab_size = load_le<uint32_t>(bytes + 40);
  h.payload_crc32c = load_le<uint32_t>(bytes + 44);
  h.document_count = load_le<uint64_t>(bytes + 48);
  if (h.vocab_size == 0) fail(where + "vocab size is 0");
  if (h.token_bytes != token_bytes_for_vocab(h.vocab_size))
    fail(where + "token dtype of " + std::to_string(h.token_bytes) +
         " bytes does not match vocab size " + std::to_string(h.vocab_size) + " (expected " +
         std::to_string(token_bytes_for_vocab(h.vocab_size)) + ")");
  return h;
}

// ---------------------------------------------------------------------------------------------
// Writer

TokenShardWriter::TokenShardWriter(std::string path, uint64_t tokenizer_fingerprint,
                                   uint32_t vocab_size)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  if (vocab_size == 0) fail("token shard '" + path_ + "': vocab size must be > 0");
  header_.token_bytes = token_bytes_for_vocab(vocab_size);
  header_.tokenizer_fingerprint = tokenizer_fingerprint;
  header_.vocab_size = vocab_size;
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) fail("cannot create token shard '" + tmp_path_ + "': " + errno_text());
  // Placeholder header; finish() rewrites it with the counts and checksum.
  unsigned char placeholder[kTokenShardHeaderBytes] = {};
  if (std::fwrite(placeholder, 1, sizeof placeholder, file_) != sizeof placeholder)
    fail("cannot write token shard '" + tmp_path_ + "': " + errno_text());
  buffer_.reserve(kWriteBufferBytes);
}

TokenShardWriter::~TokenShardWriter() {
  if (file_) {
    std::fclose(file_);
    std::error_code ignored;
    std::filesystem::remove(tmp_path_, ignored);
  }
}

void TokenShardWriter::append(const int32_t* tokens, size_t n, uint64_t text_bytes,
                              uint64_t documents) {
  SHARDLM_CHECK(file_ != nullptr, "append to finished token shard '" + path_ + "'");
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = tokens[i];
    if (id < 0 || static_cast<uint32_t>(id) >= header_.vocab_size)
      fail("token shard '" + path_ + "': token id " + std::to_string(id) +
           " is outside the vocabulary [0, " + std::to_string(header_.vocab_size) + ")");
    if (buffer_.size() + header_.token_bytes > kWriteBufferBytes) flush_buffer();
    const size_t at = buffer_.size();
    buffer_.resize(at + header_.token_bytes);
    if (header_.token_bytes == 2)
      store_le<uint16_t>(buffer_.data() + at, static_cast<uint16_t>(id));
    else
      store_le<uint32_t>(buffer_.data() + at, static_cast<uint32_t>(id));
  }
  header_.token_count += n;
  header_.text_bytes += text_bytes;
  header_.document_count += documents;
}

void TokenShardWriter::flush_buffer() {
  if (buffer_.empty()) return;
  crc_ = crc32c_update(crc_, buffer_.data(), buffer_.size());
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
    fail("cannot write token shard '" + tmp_path_ + "': " + errno_text());
  buffer_.clear();
}

TokenShardHeader TokenShardWriter::finish() {
  SHARDLM_CHECK(file_ != nullptr, "token shard '" + path_ + "' finished twice");
  flush_buffer();
  header_.payload_crc32c = crc_;
  unsigned char bytes[kTokenShardHeaderBytes];
  encode_header(header_, bytes);
  if (std::fseek(file_, 0, SEEK_SET) != 0 ||
      std::fwrite(bytes, 1, sizeof bytes, file_) != sizeof bytes || std::fflush(file_) != 0)
    fail("cannot write token shard '" + tmp_path_ + "': " + errno_text());
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) fail("cannot close token shard '" + tmp_path_ + "': " + errno_text());
  commit_file(tmp_path_, path_);
  return header_;
}

// ---------------------------------------------------------------------------------------------
// Reader

TokenShardReader::TokenShardReader(const std::string& path, const ShardExpectations& expect)
    : path_(path) {
  const std::string where = "token shard '" + path + "': ";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open token shard '" + path + "': " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string reason = errno_text();
    ::close(fd);
    fail("cannot stat token shard '" + path + "': " + reason);
  }
  map_bytes_ = static_cast<size_t>(st.st_size);
  if (map_bytes_ > 0) {
    void* p = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string reason = errno_text();
      ::close(fd);
      fail("cannot map token shard '" + path + "': " + reason);
    }
    map_ = static_cast<const unsigned char*>(p);
  }
  ::close(fd);  // the mapping keeps the file open

  try {
    header_ = parse_token_shard_header(map_, map_bytes_, path);
    const uint64_t payload_bytes = header_.token_count * header_.token_bytes;
    const uint64_t expected_bytes = kTokenShardHeaderBytes + payload_bytes;
    if (header_.token_count > (UINT64_MAX - kTokenShardHeaderBytes) / header_.token_bytes ||
        map_bytes_ < expected_bytes)
      fail(where + "truncated: the header says " + std::to_string(header_.token_count) +
           " tokens (" + std::to_string(expected_bytes) + " bytes), the file has " +
           std::to_string(map_bytes_) + " bytes");
    if (map_bytes_ > expected_bytes)
      fail(where + "the file has " + std::to_string(map_bytes_ - expected_bytes) +
           " trailing bytes after the " + std::to_string(header_.token_count) +
           " tokens the header announces");
    if (expect.tokenizer_fingerprint &&
        *expect.tokenizer_fingerprint != header_.tokenizer_fingerprint)
      fail(where + "written with tokenizer fingerprint " + hex64(header_.tokenizer_fingerprint) +
           ", expected " + hex64(*expect.tokenizer_fingerprint) +
           ": the data was prepared with a different tokenizer");
    if (expect.model_vocab_size && header_.vocab_size > *expect.model_vocab_size)
      fail(where + "tokenizer vocab size " + std::to_string(header_.vocab_size) +
           " exceeds the model's vocab size " + std::to_string(*expect.model_vocab_size) +
           ": token ids would be out of range");
    const unsigned char* payload = map_ + kTokenShardHeaderBytes;
    if (crc32c(payload, payload_bytes) != header_.payload_crc32c)
      fail(where + "payload checksum mismatch: the token data is corrupted");
    if (header_.token_count > 0) {
      const uint32_t largest = header_.token_bytes == 2
                                   ? max_token<uint16_t>(payload, header_.token_count)
                                   : max_token<uint32_t>(payload, header_.token_count);
      if (largest >= header_.vocab_size)
        fail(where + "holds token id " + std::to_string(largest) + " outside its vocabulary of " +
             std::to_string(header_.vocab_size));
    }
  } catch (...) {
    unmap();
    throw;
  }
}

TokenShardReader::TokenShardReader(TokenShardReader&& other) noexcept
    : path_(std::move(other.path_)),
      header_(other.header_),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)) {}

TokenShardReader& TokenShardReader::operator=(TokenShardReader&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    header_ = other.header_;
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
  }
  return *this;
}

TokenShardReader::~TokenShardReader() {
  unmap();
}

void TokenShardReader::unmap() {
  if (map_) ::munmap(const_cast<unsigned char*>(map_), map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

void TokenShardReader::read(uint64_t first, uint64_t n, int32_t* out) const {
  SHARDLM_CHECK(first <= header_.token_count && n <= header_.token_count - first,
                "read of tokens [" + std::to_string(first) + ", " + std::to_string(first + n) +
                    ") from '" + path_ + "' with " + std::to_string(header_.token_count) +
                    " tokens");
  const unsigned char* payload = map_ + kTokenShardHeaderBytes;
  if (header_.token_bytes == 2) {
    const auto* ids = reinterpret_cast<const uint16_t*>(payload) + first;
    for (uint64_t i = 0; i < n; ++i) out[i] = ids[i];
  } else {
    const auto* ids = reinterpret_cast<const uint32_t*>(payload) + first;
    for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(ids[i]);
  }
}

}  // namespace shardlm
