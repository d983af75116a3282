#include "data/loader.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/hash.h"

namespace shardlm {

// ---------------------------------------------------------------------------------------------
// TokenDataset

TokenDataset::TokenDataset(const std::string& dir, const std::string& split,
                           const ShardExpectations& expect)
    : dir_(dir), split_(split), index_(read_dataset_index(dir)) {
  if (split != "train" && split != "val")
    fail("unknown data split '" + split + "' (expected train or val)");
  const auto entries = index_.split_shards(split);
  if (entries.empty())
    fail("dataset '" + dir + "' has no " + split + " shards" +
         (split == "val" ? " (was it prepared with --val-fraction 0?)" : ""));
  // The index's own tokenizer claims are checked up front so the message names the dataset.
  if (expect.tokenizer_fingerprint &&
      *expect.tokenizer_fingerprint != index_.tokenizer_fingerprint) {
    char got[19], want[19];
    std::snprintf(got, sizeof got, "0x%016llx",
                  static_cast<unsigned long long>(index_.tokenizer_fingerprint));
    std::snprintf(want, sizeof want, "0x%016llx",
                  static_cast<unsigned long long>(*expect.tokenizer_fingerprint));
    fail("dataset '" + dir + "' was prepared with tokenizer fingerprint " + got + ", expected " +
         want + ": the data was prepared with a different tokenizer");
  }
  if (expect.model_vocab_size && index_.vocab_size > *expect.model_vocab_size)
    fail("dataset '" + dir + "' has tokenizer vocab size " + std::to_string(index_.vocab_size) +
         ", larger than the model's vocab size " + std::to_string(*expect.model_vocab_size) +
         ": token ids would be out of range");

  starts_.push_back(0);
  for (const auto& e : entries) {
    const auto path = (std::filesystem::path(dir) / e.file).string();
    TokenShardReader shard(path, expect);
    const auto& h = shard.header();
    if (h.tokenizer_fingerprint != index_.tokenizer_fingerprint ||
        h.vocab_size != index_.vocab_size)
      fail("token shard '" + path +
           "' has a different tokenizer (fingerprint or vocab size) than " + kDatasetIndexFile +
           " of its dataset");
    if (h.token_count != e.tokens || h.text_bytes != e.text_bytes ||
        h.document_count != e.documents)
      fail("token shard '" + path + "' holds " + std::to_string(h.token_count) + " tokens / " +
           std::to_string(h.text_bytes) + " text bytes, but " + kDatasetIndexFile + " lists " +
           std::to_string(e.tokens) + " / " + std::to_string(e.text_bytes) +
           ": the shard was replaced");
    starts_.push_back(starts_.back() + h.token_count);
    text_bytes_ += h.text_bytes;
    shards_.push_back(std::move(shard));
  }
}

std::string TokenDataset::tokenizer_path() const {
  return (std::filesystem::path(dir_) / index_.tokenizer_file).string();
}

void TokenDataset::read(uint64_t first, uint64_t n, int32_t* out) const {
  SHARDLM_CHECK(first <= token_count() && n <= token_count() - first,
                "read of tokens [" + std::to_string(first) + ", " + std::to_string(first + n) +
                    ") from the " + split_ + " split of '" + dir_ + "' with " +
                    std::to_string(token_count()) + " tokens");
  // The shard holding `first`: the last start <= first.
  size_t s = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), first) -
                                 starts_.begin()) -
             1;
  while (n > 0) {
    const uint64_t offset = first - starts_[s];
    const uint64_t take = std::min(n, shards_[s].token_count() - offset);
    shards_[s].read(offset, take, out);
    out += take;
    first += take;
    n -= take;
    ++s;
  }
}

// ---------------------------------------------------------------------------------------------
// FeistelPermutation

FeistelPermutation::FeistelPermutation(uint64_t n, uint64_t key) : n_(n) {
  SHARDLM_CHECK(n > 0, "permutation of an empty range");
  const int bits = std::max(1, static_cast<int>(std::bit_width(n - 1)));
  half_bits_ = (bits + 1) / 2;
  half_mask_ = (uint64_t{1} << half_bits_) - 1;
  uint64_t k = key;
  for (auto& rk : round_keys_) rk = k = splitmix64(k);
}

uint64_t FeistelPermutation::encrypt(uint64_t x) const {
  uint64_t left = x >> half_bits_, right = x & half_mask_;
  for (uint64_t rk : round_keys_) {
    const uint64_t next_right = left ^ (splitmix64(right ^ rk) & half_mask_);
    left = right;
    right = next_right;
  }
  return (left << half_bits_) | right;
}

uint64_t FeistelPermutation::operator()(uint64_t i) const {
  SHARDLM_CHECK(i < n_,
                "permutation index " + std::to_string(i) + " out of range " + std::to_string(n_));
  // Cycle walking: the network permutes [0, 4^half_bits); following i's cycle until it is back
  // in [0, n) gives a bijection of [0, n).
  uint64_t y = encrypt(i);
  while (y >= n_) y = encrypt(y);
  return y;
}

// ---------------------------------------------------------------------------------------------
// SampleLoader

SampleLoader::SampleLoader(const TokenDataset& data, int seq_len, uint64_t seed)
    : data_(data), seq_len_(seq_len), seed_(seed), samples_per_epoch_(0) {
  if (seq_len <= 0) fail("sequence length must be positive, got " + std::to_string(seq_len));
  if (data.token_count() < static_cast<uint64_t>(seq_len) + 1)
    fail("the " + data.split() + " split of '" + data.dir() + "' has " +
         std::to_string(data.token_count()) +
         " tokens, fewer than one sample of seq_len + 1 = " + std::to_string(seq_len + 1));
  samples_per_epoch_ = (data.token_count() - 1) / static_cast<uint64_t>(seq_len);
}

uint64_t SampleLoader::window_of(uint64_t global_sample) const {
  const uint64_t epoch = global_sample / samples_per_epoch_;
  const uint64_t position = global_sample % samples_per_epoch_;
  return FeistelPermutation(samples_per_epoch_, splitmix64(seed_) ^ splitmix64(~epoch))(position);
}

void SampleLoader::get_window(uint64_t window, int32_t* tokens, int32_t* targets) const {
  SHARDLM_CHECK(window < samples_per_epoch_, "window " + std::to_string(window) + " out of range " +
                                                 std::to_string(samples_per_epoch_));
  const uint64_t first = window * static_cast<uint64_t>(seq_len_);
  data_.read(first, seq_len_, tokens);
  data_.read(first + 1, seq_len_, targets);
}

void SampleLoader::get_samples(uint64_t first_global_sample, int count, int32_t* tokens,
                               int32_t* targets) const {
  SHARDLM_CHECK(count >= 0, "negative sample count");
  SHARDLM_CHECK(first_global_sample <= UINT64_MAX - static_cast<uint64_t>(count),
                "global sample index overflows");
  const size_t row = static_cast<size_t>(seq_len_);
  for (int i = 0; i < count; ++i)
    get_window(window_of(first_global_sample + static_cast<uint64_t>(i)), tokens + i * row,
               targets + i * row);
}

}  // namespace shardlm
