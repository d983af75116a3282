// Tokenizer: special ids, exact round trips (byte fallback for unseen characters), encoding
// that is independent of where text is cut at line boundaries, fingerprints, refusals.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "data/tokenizer.h"
#include "data_test_support.h"
#include "support_errors.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::make_scratch_dir;
using testing::read_file;

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_scratch_dir("tokenizer");
    model_path_ = testing::tiny_tokenizer_model(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static fs::path dir_;
  static std::string model_path_;
};
fs::path TokenizerTest::dir_;
std::string TokenizerTest::model_path_;

TEST_F(TokenizerTest, SpecialIdsAndVocab) {
  const Tokenizer tok = Tokenizer::from_file(model_path_);
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.pad_id(), kPadId);
  EXPECT_EQ(tok.unk_id(), kUnkId);
  EXPECT_EQ(tok.bos_id(), kBosId);
  EXPECT_EQ(tok.eos_id(), kEosId);
  EXPECT_EQ(tok.piece(kEosId), "</s>");
  EXPECT_EQ(tok.piece(4), "<0x00>");  // byte pieces follow the special ids
}

TEST_F(TokenizerTest, RoundTripsUnseenShakespeare) {
  const Tokenizer tok = Tokenizer::from_file(model_path_);
  const std::string all = read_file(testing::shakespeare_path());
  const std::string text = all.substr(600'000, 20'000);  // outside the 200 KB training slice
  const auto ids = tok.encode(text);
  EXPECT_LT(ids.size(), text.size() * 6 / 10)
      << "BPE should merge common English into multi-byte pieces";
  EXPECT_EQ(tok.decode(ids), text);
}

TEST_F(TokenizerTest, RoundTripsNonAsciiThroughByteFallback) {
  const Tokenizer tok = Tokenizer::from_file(model_path_);
  const std::string text =
      "Grüße aus Köln, 東京 🙂 naïve — «ok»\n\tTabs,  two  spaces, trailing \n\n";
  const auto ids = tok.encode(text);
  bool used_byte_piece = false;
  for (int32_t id : ids) {
    EXPECT_NE(id, kUnkId);
    used_byte_piece |= tok.piece(id).rfind("<0x", 0) == 0;
  }
  EXPECT_TRUE(used_byte_piece);
  EXPECT_EQ(tok.decode(ids), text);
}

TEST_F(TokenizerTest, EncodingSplitsAtLineBoundaries) {
  const Tokenizer tok = Tokenizer::from_file(model_path_);
  const std::string a = " First Citizen:\nBefore we proceed any further, hear me speak.\n";
  const std::string b = "  All:\nSpeak, speak.\n";
  auto joined = tok.encode(a);
  const auto tail = tok.encode(b);
  joined.insert(joined.end(), tail.begin(), tail.end());
  EXPECT_EQ(tok.encode(a + b), joined);
  EXPECT_EQ(tok.decode(joined), a + b) << "no implicit leading space per encode() call";
}

TEST_F(TokenizerTest, ControlIdsDecodeToNothing) {
  const Tokenizer tok = Tokenizer::from_file(model_path_);
  auto ids = tok.encode("to be");
  ids.push_back(kEosId);
  EXPECT_EQ(tok.decode(ids), "to be");
}

TEST_F(TokenizerTest, FingerprintIsFnv1aOfTheModelBytesAndSurvivesSerialization) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);

  const Tokenizer from_file = Tokenizer::from_file(model_path_);
  const std::string bytes = read_file(model_path_);
  EXPECT_EQ(from_file.serialized(), bytes);
  EXPECT_EQ(from_file.fingerprint(), fnv1a64(bytes));

  const Tokenizer from_bytes = Tokenizer::from_serialized(from_file.serialized());
  EXPECT_EQ(from_bytes.fingerprint(), from_file.fingerprint());
  EXPECT_EQ(from_bytes.encode("Wherefore art thou?"), from_file.encode("Wherefore art thou?"));

  const auto copy = dir_ / "copy.model";
  from_bytes.save(copy.string());
  EXPECT_EQ(Tokenizer::from_file(copy.string()).fingerprint(), from_file.fingerprint());
}

TEST_F(TokenizerTest, Refusals) {
  const Tokenizer tok = Tokenizer::from_file(model_path_);
  expect_error([&] { tok.decode({5, 512}); }, {"token id 512 at position 1", "512 ids"});
  expect_error([&] { tok.decode({-1}); }, {"token id -1 at position 0"});
  expect_error([&] { Tokenizer::from_file((dir_ / "missing.model").string()); }, {"missing.model"});
  expect_error([&] { Tokenizer::from_serialized("definitely not a protobuf"); },
               {"cannot load tokenizer model"});
  // A model with a zero-length piece, which SentencePiece's trie builder throws on (found by
  // fuzz_tokenizer; it ended the process).
  const std::string empty_piece =
      read_file(std::string(SHARDLM_REPO_DIR) +
                "/tests/fuzz/corpus/tokenizer/regress_zero_length_piece_darts_throws");
  expect_error([&] { Tokenizer::from_serialized(empty_piece, "'damaged.model'"); },
               {"cannot load tokenizer model from 'damaged.model'", "zero-length key"});

  TokenizerTrainOptions options;
  options.input_files = {(dir_ / "tiny-train.txt").string()};
  options.model_prefix = (dir_ / "bad").string();
  options.vocab_size = 100;  // no room for the 256 byte pieces
  expect_error([&] { train_tokenizer(options); }, {"--vocab-size 100", "at least 264"});
  options.vocab_size = 512;
  options.input_files = {(dir_ / "no-such-input.txt").string()};
  expect_error([&] { train_tokenizer(options); }, {"no-such-input.txt", "not a readable file"});
  options.input_files = {(dir_ / "tiny-train.txt").string()};
  options.character_coverage = 1.5;
  expect_error([&] { train_tokenizer(options); }, {"--character-coverage", "got 1.5"});
}

}  // namespace
}  // namespace shardlm
