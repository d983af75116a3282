// Token shards: write/read round trips in both dtypes, and every refusal of a damaged or
// mismatched shard, each with a message that names the file and the problem.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "core/checksum.h"
#include "core/error.h"
#include "data/token_shard.h"
#include "data_test_support.h"
#include "support_errors.h"
#include "support_source_location.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::read_file;
using testing::write_file;

constexpr uint64_t kFingerprint = 0x0123456789abcdefull;

class TokenShardTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_scratch_dir("shard"); }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<int32_t> random_tokens(size_t n, uint32_t vocab, uint32_t seed = 7) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab) - 1);
    std::vector<int32_t> v(n);
    for (auto& t : v) t = id(rng);
    return v;
  }

  // A valid uint16 shard of 1000 tokens, vocab 512.
  std::string write_valid_shard(const std::string& name = "s.bin") {
    const auto path = (dir_ / name).string();
    TokenShardWriter w(path, kFingerprint, 512);
    const auto tokens = random_tokens(1000, 512);
    w.append(tokens.data(), tokens.size(), 4000, 1);
    w.finish();
    return path;
  }

  // Expects opening `path` to throw an Error whose message names the file and contains `what`.
  void expect_refused(
      const std::string& path, const std::string& what, const ShardExpectations& expect = {},
      shardlm::testing::SourceLocation where = shardlm::testing::SourceLocation::current()) {
    expect_error([&] { TokenShardReader reader(path, expect); }, {path, what}, where);
  }

  fs::path dir_;
};

TEST_F(TokenShardTest, DtypeFollowsVocabSize) {
  EXPECT_EQ(token_bytes_for_vocab(512), 2u);
  EXPECT_EQ(token_bytes_for_vocab(65536), 2u);
  EXPECT_EQ(token_bytes_for_vocab(65537), 4u);
}

TEST_F(TokenShardTest, Uint16RoundTrip) {
  const auto path = (dir_ / "u16.bin").string();
  const auto a = random_tokens(3000, 512, 1), b = random_tokens(1234, 512, 2);
  {
    TokenShardWriter w(path, kFingerprint, 512);
    w.append(a.data(), a.size(), 10000, 0);
    w.append(b.data(), b.size(), 5000, 1);
    EXPECT_FALSE(fs::exists(path)) << "only finish() makes the shard visible";
    const auto h = w.finish();
    EXPECT_EQ(h.token_count, 4234u);
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(fs::file_size(path), kTokenShardHeaderBytes + 2 * 4234);

  const ShardExpectations expect{kFingerprint, 512};
  TokenShardReader r(path, expect);
  const auto& h = r.header();
  EXPECT_EQ(h.version, kTokenShardVersion);
  EXPECT_EQ(h.token_bytes, 2u);
  EXPECT_EQ(h.token_count, 4234u);
  EXPECT_EQ(h.text_bytes, 15000u);
  EXPECT_EQ(h.document_count, 1u);
  EXPECT_EQ(h.tokenizer_fingerprint, kFingerprint);
  EXPECT_EQ(h.vocab_size, 512u);

  std::vector<int32_t> all(4234);
  r.read(0, all.size(), all.data());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin()));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), all.begin() + 3000));
  std::vector<int32_t> middle(10);
  r.read(2995, 10, middle.data());
  EXPECT_TRUE(std::equal(middle.begin(), middle.end(), all.begin() + 2995));
  expect_error([&] { r.read(4230, 5, middle.data()); },
               {"read of tokens [4230, 4235)", "4234 tokens"});
}

TEST_F(TokenShardTest, Uint32RoundTripForLargeVocab) {
  const auto path = (dir_ / "u32.bin").string();
  auto tokens = random_tokens(777, 70000);
  tokens[0] = 69999;
  {
    TokenShardWriter w(path, kFingerprint, 70000);
    w.append(tokens.data(), tokens.size(), 3000, 1);
    w.finish();
  }
  EXPECT_EQ(fs::file_size(path), kTokenShardHeaderBytes + 4 * 777);
  TokenShardReader r(path);
  EXPECT_EQ(r.header().token_bytes, 4u);
  std::vector<int32_t> back(777);
  r.read(0, back.size(), back.data());
  EXPECT_EQ(back, tokens);
}

TEST_F(TokenShardTest, EmptyShardIsValid) {
  const auto path = (dir_ / "empty.bin").string();
  TokenShardWriter(path, kFingerprint, 512).finish();
  EXPECT_EQ(TokenShardReader(path).token_count(), 0u);
}

TEST_F(TokenShardTest, WriterRefusesIdsOutsideTheVocabulary) {
  TokenShardWriter w((dir_ / "w.bin").string(), kFingerprint, 512);
  const int32_t too_big = 512, negative = -1;
  expect_error([&] { w.append(&too_big, 1, 1, 0); }, {"token id 512", "[0, 512)"});
  expect_error([&] { w.append(&negative, 1, 1, 0); }, {"token id -1", "[0, 512)"});
}

TEST_F(TokenShardTest, AbandonedWriterLeavesNothing) {
  const auto path = (dir_ / "abandoned.bin").string();
  {
    TokenShardWriter w(path, kFingerprint, 512);
    const auto t = random_tokens(100, 512);
    w.append(t.data(), t.size(), 400, 0);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(TokenShardTest, RefusesMissingFile) {
  expect_refused((dir_ / "nope.bin").string(), "cannot open");
}

TEST_F(TokenShardTest, RefusesWrongMagic) {
  const auto path = write_valid_shard();
  auto bytes = read_file(path);
  bytes[0] = 'X';
  write_file(path, bytes);
  expect_refused(path, "bad magic");
}

TEST_F(TokenShardTest, RefusesWrongVersion) {
  const auto path = write_valid_shard();
  auto bytes = read_file(path);
  bytes[8] = 2;  // version field, little-endian
  write_file(path, bytes);
  expect_refused(path, "unsupported format version 2");
}

TEST_F(TokenShardTest, RefusesCorruptedHeader) {
  const auto path = write_valid_shard();
  auto bytes = read_file(path);
  bytes[24] ^= 0x01;  // text_bytes
  write_file(path, bytes);
  expect_refused(path, "header checksum mismatch");
}

TEST_F(TokenShardTest, RefusesTruncatedFiles) {
  const auto path = write_valid_shard();
  const auto bytes = read_file(path);
  write_file(path, bytes.substr(0, bytes.size() - 2));
  expect_refused(path, "truncated: the header says 1000 tokens");
  write_file(path, bytes.substr(0, 40));
  expect_refused(path, "truncated: the file has 40 bytes");
  write_file(path, "");
  expect_refused(path, "truncated");
}

TEST_F(TokenShardTest, RefusesTrailingBytes) {
  const auto path = write_valid_shard();
  write_file(path, read_file(path) + "x");
  expect_refused(path, "1 trailing bytes");
}

TEST_F(TokenShardTest, RefusesFlippedPayloadByte) {
  const auto path = write_valid_shard();
  auto bytes = read_file(path);
  bytes[kTokenShardHeaderBytes + 777] ^= 0x10;
  write_file(path, bytes);
  expect_refused(path, "payload checksum mismatch");
}

TEST_F(TokenShardTest, RefusesOtherTokenizer) {
  const auto path = write_valid_shard();
  ShardExpectations expect;
  expect.tokenizer_fingerprint = kFingerprint + 1;
  expect_refused(path, "different tokenizer", expect);
  expect.tokenizer_fingerprint = kFingerprint;
  EXPECT_NO_THROW(TokenShardReader(path, expect));
}

TEST_F(TokenShardTest, RefusesVocabLargerThanTheModel) {
  const auto path = write_valid_shard();
  ShardExpectations expect;
  expect.model_vocab_size = 256;
  expect_refused(path, "exceeds the model's vocab size 256", expect);
  expect.model_vocab_size = 512;  // a padded model vocab (>= the tokenizer's) is fine
  EXPECT_NO_THROW(TokenShardReader(path, expect));
  expect.model_vocab_size = 50304;
  EXPECT_NO_THROW(TokenShardReader(path, expect));
}

TEST_F(TokenShardTest, RefusesIdsBeyondTheHeaderVocabEvenWithValidChecksums) {
  // A writer bug, not corruption: the header claims vocab 256 over ids up to 511.
  const auto path = write_valid_shard();
  auto bytes = read_file(path);
  auto* p = reinterpret_cast<unsigned char*>(bytes.data());
  const uint32_t vocab = 256;
  std::memcpy(p + 40, &vocab, 4);
  const uint32_t header_crc = crc32c(p, 60);
  std::memcpy(p + 60, &header_crc, 4);
  write_file(path, bytes);
  expect_refused(path, "outside its vocabulary of 256");
}

}  // namespace
}  // namespace shardlm
