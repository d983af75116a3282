// `data prepare`: the shards decode back to the input, the split is deterministic and gives a
// val split for a single 1 MB file, shard caps hold, thread count does not change the bytes,
// and an existing dataset is not overwritten by accident.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "data_test_support.h"
#include "support_errors.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::read_file;
using testing::write_file;

class DataPrepareTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_scratch_dir("prepare");
    model_path_ = testing::tiny_tokenizer_model(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static PrepareOptions options(const std::vector<std::string>& inputs, const std::string& out) {
    PrepareOptions o;
    o.input_files = inputs;
    o.tokenizer_path = model_path_;
    o.out_dir = (dir_ / out).string();
    o.num_threads = 2;
    return o;
  }

  static std::vector<int32_t> all_tokens(const TokenDataset& data) {
    std::vector<int32_t> v(data.token_count());
    data.read(0, v.size(), v.data());
    return v;
  }

  static fs::path dir_;
  static std::string model_path_;
};
fs::path DataPrepareTest::dir_;
std::string DataPrepareTest::model_path_;

TEST_F(DataPrepareTest, TrainStreamDecodesToTheInputsWithEosBetweenDocuments) {
  const auto a = dir_ / "doc-a.txt", b = dir_ / "doc-b.txt", empty = dir_ / "empty.txt";
  write_file(a, testing::shakespeare_slice(60'000));
  write_file(b, "Grüße 東京\nno trailing newline");
  write_file(empty, "");
  auto o = options({a.string(), empty.string(), b.string()}, "decode");
  o.val_fraction = 0.0;
  o.block_bytes = 1000;  // many blocks, cut at newlines
  const auto result = prepare_token_shards(o);
  EXPECT_EQ(result.input_bytes, fs::file_size(a) + fs::file_size(b));
  EXPECT_TRUE(result.index.split_shards("val").empty());

  const TokenDataset train(o.out_dir, "train");
  EXPECT_EQ(train.text_bytes(), result.input_bytes);
  const auto tokens = all_tokens(train);
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), kEosId), 2)
      << "one EOS per non-empty document";
  EXPECT_EQ(tokens.back(), kEosId);
  const Tokenizer tok = Tokenizer::from_file(train.tokenizer_path());
  EXPECT_EQ(tok.fingerprint(), train.tokenizer_fingerprint());
  EXPECT_EQ(tok.decode(tokens), read_file(a) + read_file(b));
  // Blocks cut at newlines encode exactly as the whole document does.
  auto whole = tok.encode(read_file(a));
  whole.push_back(kEosId);
  EXPECT_TRUE(std::equal(whole.begin(), whole.end(), tokens.begin()));
}

TEST_F(DataPrepareTest, SingleMegabyteFileGetsAValSplit) {
  auto o = options({testing::shakespeare_path().string()}, "shakespeare");
  o.val_fraction = 0.1;
  const auto result = prepare_token_shards(o);
  const TokenDataset train(o.out_dir, "train"), val(o.out_dir, "val");
  EXPECT_GT(val.token_count(), 0u);
  EXPECT_EQ(train.text_bytes() + val.text_bytes(), fs::file_size(testing::shakespeare_path()));
  const double val_share =
      static_cast<double>(val.text_bytes()) / static_cast<double>(result.input_bytes);
  EXPECT_GT(val_share, 0.03);
  EXPECT_LT(val_share, 0.25);
  EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / "tokenizer.model"));
  EXPECT_EQ(read_file(fs::path(o.out_dir) / "tokenizer.model"), read_file(model_path_));
}

TEST_F(DataPrepareTest, SplitRuleDependsOnlyOnTheBlockIndex) {
  int val = 0;
  for (uint64_t i = 0; i < 100'000; ++i) val += is_validation_block(i, 0.1);
  EXPECT_NEAR(val, 10'000, 400);
  // A 1 MB file has about 64 blocks of 16 KiB: some of the first 60 must be val at 10%.
  int early = 0;
  for (uint64_t i = 0; i < 60; ++i) early += is_validation_block(i, 0.1);
  EXPECT_GE(early, 2);
  EXPECT_FALSE(is_validation_block(5, 0.0));
}

TEST_F(DataPrepareTest, ShardCapAndThreadCountIndependence) {
  const auto text = dir_ / "slice.txt";
  write_file(text, testing::shakespeare_slice(150'000));
  auto o1 = options({text.string()}, "threads1");
  o1.shard_tokens = 20'000;
  o1.block_bytes = 4096;
  o1.val_fraction = 0.2;
  o1.num_threads = 1;
  auto o3 = o1;
  o3.out_dir = (dir_ / "threads3").string();
  o3.num_threads = 3;
  const auto r1 = prepare_token_shards(o1);
  const auto r3 = prepare_token_shards(o3);
  ASSERT_EQ(r1.index.shards.size(), r3.index.shards.size());
  EXPECT_GT(r1.index.split_shards("train").size(), 3u);
  for (const auto& s : r1.index.shards) {
    EXPECT_LE(s.tokens, o1.shard_tokens) << s.file;
    EXPECT_EQ(read_file(fs::path(o1.out_dir) / s.file), read_file(fs::path(o3.out_dir) / s.file))
        << s.file;
  }
  EXPECT_EQ(read_file(fs::path(o1.out_dir) / "index.txt"),
            read_file(fs::path(o3.out_dir) / "index.txt"));
}

TEST_F(DataPrepareTest, RefusesToOverwriteWithoutAsking) {
  const auto text = dir_ / "small.txt";
  write_file(text, testing::shakespeare_slice(20'000));
  auto o = options({text.string()}, "again");
  o.val_fraction = 0.0;
  prepare_token_shards(o);
  expect_error([&] { prepare_token_shards(o); }, {"already holds dataset files", "--overwrite"});
  o.overwrite = true;
  EXPECT_NO_THROW(prepare_token_shards(o));
  EXPECT_NO_THROW(TokenDataset(o.out_dir, "train"));
}

TEST_F(DataPrepareTest, RefusesBadOptions) {
  const auto text = dir_ / "small2.txt";
  write_file(text, testing::shakespeare_slice(5'000));
  auto o = options({text.string()}, "bad");
  o.val_fraction = 0.5;
  o.block_bytes = 1 << 20;  // one block: it cannot be split 50/50
  expect_error([&] { prepare_token_shards(o); },
               {"no block fell into the val split", "--block-bytes"});
  o = options({(dir_ / "missing.txt").string()}, "bad2");
  expect_error([&] { prepare_token_shards(o); }, {"missing.txt", "is not a readable file"});
  o = options({text.string()}, "bad3");
  o.val_fraction = 1.0;
  expect_error([&] { prepare_token_shards(o); }, {"--val-fraction", "got 1.0"});
}

}  // namespace
}  // namespace shardlm
