// TokenDataset and SampleLoader: the concatenated stream across shards, window contents,
// determinism, one permutation of the windows per epoch (different per epoch), O(1) access
// to any global sample, the data-parallel union property, and refusals at open.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

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

constexpr int kSeqLen = 64;

class DataLoaderTest : public ::testing::Test {
 protected:
  // One dataset for the suite: 120 KB of text in shards of at most 8000 tokens, so that
  // windows cross shard boundaries.
  static void SetUpTestSuite() {
    dir_ = testing::make_scratch_dir("loader");
    const auto text = dir_ / "text.txt";
    testing::write_file(text, testing::shakespeare_slice(120'000));
    PrepareOptions o;
    o.input_files = {text.string()};
    o.tokenizer_path = testing::tiny_tokenizer_model(dir_);
    o.out_dir = (dir_ / "data").string();
    o.val_fraction = 0.1;
    o.shard_tokens = 8000;
    o.block_bytes = 2048;
    o.num_threads = 2;
    prepare_token_shards(o);
    data_dir_ = o.out_dir;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // Windows of samples [first, first + count).
  static std::vector<uint64_t> windows(const SampleLoader& loader, uint64_t first, uint64_t count) {
    std::vector<uint64_t> w(count);
    for (uint64_t i = 0; i < count; ++i) w[i] = loader.window_of(first + i);
    return w;
  }

  static fs::path dir_;
  static std::string data_dir_;
};
fs::path DataLoaderTest::dir_;
std::string DataLoaderTest::data_dir_;

TEST_F(DataLoaderTest, DatasetConcatenatesShardsInOrder) {
  const TokenDataset data(data_dir_, "train");
  ASSERT_GT(data.shards().size(), 2u);
  uint64_t total = 0;
  std::vector<int32_t> expected;
  for (const auto& shard : data.shards()) {
    total += shard.token_count();
    std::vector<int32_t> part(shard.token_count());
    shard.read(0, part.size(), part.data());
    expected.insert(expected.end(), part.begin(), part.end());
  }
  EXPECT_EQ(data.token_count(), total);
  std::vector<int32_t> stream(total);
  data.read(0, total, stream.data());
  EXPECT_EQ(stream, expected);
  // A read that straddles the first shard boundary.
  const uint64_t boundary = data.shards()[0].token_count();
  std::vector<int32_t> across(10);
  data.read(boundary - 5, 10, across.data());
  EXPECT_TRUE(
      std::equal(across.begin(), across.end(), expected.begin() + static_cast<long>(boundary) - 5));
  expect_error([&] { data.read(total - 3, 4, across.data()); }, {"read of tokens", "train split"});
  EXPECT_GT(TokenDataset(data_dir_, "val").token_count(), 0u);
}

TEST_F(DataLoaderTest, WindowsAreShiftedByOneAndTileTheStream) {
  const TokenDataset data(data_dir_, "train");
  const SampleLoader loader(data, kSeqLen, 1);
  EXPECT_EQ(loader.samples_per_epoch(), (data.token_count() - 1) / kSeqLen);
  std::vector<int32_t> stream(data.token_count());
  data.read(0, stream.size(), stream.data());
  std::vector<int32_t> tokens(kSeqLen), targets(kSeqLen);
  for (uint64_t w : {uint64_t{0}, uint64_t{1}, loader.samples_per_epoch() - 1}) {
    loader.get_window(w, tokens.data(), targets.data());
    EXPECT_TRUE(
        std::equal(tokens.begin(), tokens.end(), stream.begin() + static_cast<long>(w * kSeqLen)));
    EXPECT_TRUE(std::equal(targets.begin(), targets.end(),
                           stream.begin() + static_cast<long>(w * kSeqLen + 1)));
  }
  expect_error(
      [&] { loader.get_window(loader.samples_per_epoch(), tokens.data(), targets.data()); },
      {"window", "out of range"});
}

TEST_F(DataLoaderTest, SameArgumentsGiveSameSamples) {
  const TokenDataset data(data_dir_, "train");
  const SampleLoader a(data, kSeqLen, 42), b(data, kSeqLen, 42), other_seed(data, kSeqLen, 43);
  const int count = 8;
  std::vector<int32_t> ta(count * kSeqLen), ya(count * kSeqLen), tb(count * kSeqLen),
      yb(count * kSeqLen);
  a.get_samples(1000, count, ta.data(), ya.data());
  b.get_samples(1000, count, tb.data(), yb.data());
  EXPECT_EQ(ta, tb);
  EXPECT_EQ(ya, yb);
  // Row i is sample 1000 + i.
  std::vector<int32_t> t1(kSeqLen), y1(kSeqLen);
  a.get_samples(1003, 1, t1.data(), y1.data());
  EXPECT_TRUE(std::equal(t1.begin(), t1.end(), ta.begin() + 3 * kSeqLen));
  EXPECT_NE(windows(a, 0, 50), windows(other_seed, 0, 50));
}

TEST_F(DataLoaderTest, EachEpochIsAPermutationAndEpochsDiffer) {
  const TokenDataset data(data_dir_, "train");
  const SampleLoader loader(data, kSeqLen, 7);
  const uint64_t S = loader.samples_per_epoch();
  ASSERT_GT(S, 100u);
  std::vector<uint64_t> identity(S);
  for (uint64_t i = 0; i < S; ++i) identity[i] = i;
  std::vector<std::vector<uint64_t>> epochs;
  for (uint64_t e : {0, 1, 2, 1000}) {
    auto w = windows(loader, e * S, S);
    epochs.push_back(w);
    EXPECT_NE(w, identity) << "epoch " << e << " is not shuffled";
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, identity) << "epoch " << e << " does not use every window exactly once";
  }
  for (size_t i = 0; i < epochs.size(); ++i)
    for (size_t j = i + 1; j < epochs.size(); ++j) EXPECT_NE(epochs[i], epochs[j]);
}

TEST_F(DataLoaderTest, FeistelPermutationIsABijectionForAnySize) {
  for (uint64_t n : {1, 2, 3, 4, 5, 17, 64, 65, 1000, 4097}) {
    for (uint64_t key : {0ull, 1ull, 0xdeadbeefull}) {
      const FeistelPermutation p(n, key);
      std::vector<bool> hit(n, false);
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t y = p(i);
        ASSERT_LT(y, n);
        EXPECT_FALSE(hit[y]) << "n=" << n << " key=" << key << " maps two inputs to " << y;
        hit[y] = true;
      }
    }
  }
  expect_error([&] { FeistelPermutation(5, 0)(5); }, {"permutation index 5", "out of range 5"});
}

TEST_F(DataLoaderTest, FarAwaySampleIsComputedDirectly) {
  const TokenDataset data(data_dir_, "train");
  const SampleLoader loader(data, kSeqLen, 3);
  const int count = 4;
  std::vector<int32_t> t1(count * kSeqLen), y1(count * kSeqLen), t2(count * kSeqLen),
      y2(count * kSeqLen);
  const auto start = std::chrono::steady_clock::now();
  loader.get_samples(1'000'000'000'000ull, count, t1.data(), y1.data());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.05) << "sample 10^12 must not replay earlier epochs";
  loader.get_samples(1'000'000'000'000ull, count, t2.data(), y2.data());
  EXPECT_EQ(t1, t2);
  EXPECT_EQ(y1, y2);
  // It is the permuted window of its epoch, like any other sample.
  const uint64_t S = loader.samples_per_epoch();
  const uint64_t g = 1'000'000'000'000ull;
  std::vector<int32_t> tw(kSeqLen), yw(kSeqLen);
  loader.get_window(loader.window_of(g), tw.data(), yw.data());
  EXPECT_TRUE(std::equal(tw.begin(), tw.end(), t1.begin()));
  EXPECT_LT(loader.window_of(g), S);
  EXPECT_LT(loader.window_of(UINT64_MAX - 1), S);
}

TEST_F(DataLoaderTest, DataParallelRanksTogetherSeeTheSingleRankStep) {
  const TokenDataset data(data_dir_, "train");
  const SampleLoader loader(data, kSeqLen, 11);
  const int B = 3, M = 2;  // micro-batch size, micro-batches per step on each DP rank
  const auto rank_windows = [&](uint64_t step, int D, int r, int micro_batches) {
    const uint64_t samples_per_step = static_cast<uint64_t>(micro_batches) * D * B;
    std::multiset<uint64_t> seen;
    for (int m = 0; m < micro_batches; ++m) {
      const uint64_t first = step * samples_per_step + static_cast<uint64_t>(m * D + r) * B;
      for (uint64_t w : windows(loader, first, B)) seen.insert(w);
    }
    return seen;
  };
  for (uint64_t step : {0, 1, 5, 123}) {
    auto union_of_ranks = rank_windows(step, 2, 0, M);
    const auto rank1 = rank_windows(step, 2, 1, M);
    EXPECT_NE(union_of_ranks, rank1) << "DP ranks must see different samples";
    union_of_ranks.insert(rank1.begin(), rank1.end());
    EXPECT_EQ(union_of_ranks, rank_windows(step, 1, 0, 2 * M)) << "step " << step;
  }
}

TEST_F(DataLoaderTest, RefusesMismatchesAtOpen) {
  const TokenDataset data(data_dir_, "train");
  ShardExpectations expect;
  expect.model_vocab_size = 256;  // the dataset's tokenizer has 512 ids
  expect_error([&] { TokenDataset(data_dir_, "train", expect); },
               {"vocab size 512", "larger than the model's vocab size 256"});
  expect.model_vocab_size = 512;
  EXPECT_NO_THROW(TokenDataset(data_dir_, "train", expect));
  expect.tokenizer_fingerprint = data.tokenizer_fingerprint() ^ 1;
  expect_error([&] { TokenDataset(data_dir_, "train", expect); },
               {"tokenizer fingerprint", "different tokenizer"});
  expect_error([&] { TokenDataset(data_dir_, "test", {}); }, {"unknown data split 'test'"});
  expect_error([&] { TokenDataset((dir_ / "nowhere").string(), "train", {}); },
               {"nowhere/index.txt", "shardlm data prepare"});
  expect_error([&] { SampleLoader(data, static_cast<int>(data.token_count()), 0); },
               {"fewer than one sample", "seq_len + 1"});
  expect_error([&] { SampleLoader(data, 0, 0); }, {"sequence length must be positive, got 0"});
}

TEST_F(DataLoaderTest, RefusesMissingOrReplacedShards) {
  const auto copy = dir_ / "copy";
  fs::copy(data_dir_, copy);
  const auto first_val = copy / "val_00000.bin";
  const auto train0 = copy / "train_00000.bin", train1 = copy / "train_00001.bin";
  // A shard swapped for another valid shard of a different length.
  fs::copy_file(train1, train0, fs::copy_options::overwrite_existing);
  expect_error([&] { TokenDataset d(copy.string(), "train"); }, {"train_00000.bin"});
  fs::remove(first_val);
  expect_error([&] { TokenDataset(copy.string(), "val"); }, {"val_00000.bin"});
  fs::remove(copy / "index.txt");
  expect_error([&] { TokenDataset(copy.string(), "train"); },
               {"index.txt", "not a prepared dataset directory"});
}

}  // namespace
}  // namespace shardlm
