// Token shards: one binary file holding a stream of token ids, with a fixed 64-byte
// little-endian header (layout in docs/data-format.md):
//
//   offset size  field
//        0    8  magic "SHLMTOK\0"
//        8    4  format version (kTokenShardVersion)
//       12    4  bytes per token: 2 (uint16, vocab_size <= 65536) or 4 (uint32)
//       16    8  token count
//       24    8  UTF-8 text bytes those tokens encode (for bits per byte)
//       32    8  tokenizer fingerprint (FNV-1a 64 of the .model bytes)
//       40    4  vocab size of the tokenizer
//       44    4  CRC32C of the token payload
//       48    8  documents that end in this shard (EOS tokens written by prepare)
//       56    4  reserved, 0
//       60    4  CRC32C of header bytes [0, 60)
//       64       tokens, little-endian
//
// The writer streams tokens to <path>.tmp and renames it to <path> only when the header is
// final, so a crash never leaves a shard that looks complete. The reader memory-maps the file
// and refuses anything truncated, corrupted or from another tokenizer, naming the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace shardlm {

constexpr uint32_t kTokenShardVersion = 1;
constexpr size_t kTokenShardHeaderBytes = 64;
inline constexpr char kTokenShardMagic[8] = {'S', 'H', 'L', 'M', 'T', 'O', 'K', '\0'};

// Bytes per stored token for a vocabulary: 2 when every id fits in uint16, else 4.
uint32_t token_bytes_for_vocab(uint64_t vocab_size);

struct TokenShardHeader {
  uint32_t version = kTokenShardVersion;
  uint32_t token_bytes = 2;
  uint64_t token_count = 0;
  uint64_t text_bytes = 0;
  uint64_t tokenizer_fingerprint = 0;
  uint32_t vocab_size = 0;
  uint32_t payload_crc32c = 0;
  uint64_t document_count = 0;
};

// What the consumer of a shard requires; unset fields are not checked.
struct ShardExpectations {
  std::optional<uint64_t> tokenizer_fingerprint;  // the model's tokenizer
  std::optional<uint64_t> model_vocab_size;       // shard vocab_size must not exceed it
};

class TokenShardWriter {
 public:
  TokenShardWriter(std::string path, uint64_t tokenizer_fingerprint, uint32_t vocab_size);
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;
  // Without finish(), removes the partial <path>.tmp.
  ~TokenShardWriter();

  // Appends tokens [n] (each in [0, vocab_size)) that encode `text_bytes` bytes of text and
  // end `documents` documents.
  void append(const int32_t* tokens, size_t n, uint64_t text_bytes, uint64_t documents);
  uint64_t token_count() const { return header_.token_count; }
  const std::string& path() const { return path_; }

  // Writes the final header, flushes, and renames <path>.tmp to <path>.
  TokenShardHeader finish();

 private:
  void flush_buffer();

  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  TokenShardHeader header_;
  uint32_t crc_ = 0;
  std::vector<unsigned char> buffer_;  // converted tokens not yet written
};

class TokenShardReader {
 public:
  // Maps and fully validates the shard (header, size, payload checksum, every id < vocab_size,
  // the expectations); throws Error naming `path` and the problem.
  explicit TokenShardReader(const std::string& path, const ShardExpectations& expect = {});
  TokenShardReader(TokenShardReader&& other) noexcept;
  TokenShardReader& operator=(TokenShardReader&& other) noexcept;
  TokenShardReader(const TokenShardReader&) = delete;
  TokenShardReader& operator=(const TokenShardReader&) = delete;
  ~TokenShardReader();

  const TokenShardHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  uint64_t token_count() const { return header_.token_count; }

  // Copies tokens [first, first + n) into out[n] as int32.
  void read(uint64_t first, uint64_t n, int32_t* out) const;

 private:
  void unmap();

  std::string path_;
  TokenShardHeader header_;
  const unsigned char* map_ = nullptr;
  size_t map_bytes_ = 0;
};

// Parses and checks just the header bytes of a shard (magic, version, header checksum, dtype
// against vocab size); `path` is for messages.
TokenShardHeader parse_token_shard_header(const unsigned char* bytes, size_t n_bytes,
                                          const std::string& path);

}  // namespace shardlm
