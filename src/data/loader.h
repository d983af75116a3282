// Training data access: a split of a prepared dataset as one token stream (memory-mapped, not
// copied), and the sampler that turns it into shuffled fixed-length training samples.
//
// Sampling (docs/data-format.md, "Loader"): with T = seq_len and N tokens, window w covers
// tokens [w*T, w*T + T] (T+1 tokens: inputs are the first T, targets the last T), windows do
// not overlap, and an epoch has S = (N - 1) / T windows; the last (N - 1) % T tokens are never
// a target. Global sample g is window perm_e(g % S) of epoch e = g / S, where perm_e is a
// keyed bijection of [0, S) (a Feistel network with cycle walking) that depends on (seed, e).
// So every window is used exactly once per epoch, epochs are shuffled differently, and any g
// is computed in O(1): resuming at sample 10^12 replays nothing.
//
// Both classes are read-only after construction: their const methods may be called from
// several threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset_index.h"
#include "data/token_shard.h"

namespace shardlm {

class TokenDataset {
 public:
  // Opens the shards of `split` ("train" or "val") listed in <dir>/index.txt, validates each
  // one fully (see TokenShardReader) and against the index; throws Error naming the shard.
  TokenDataset(const std::string& dir, const std::string& split,
               const ShardExpectations& expect = {});

  const std::string& dir() const { return dir_; }
  const std::string& split() const { return split_; }
  uint64_t token_count() const { return starts_.back(); }
  // UTF-8 bytes the tokens encode: bits per byte = loss_nats * token_count / (ln 2 * text_bytes).
  uint64_t text_bytes() const { return text_bytes_; }
  uint64_t tokenizer_fingerprint() const { return index_.tokenizer_fingerprint; }
  uint32_t vocab_size() const { return index_.vocab_size; }
  // <dir>/tokenizer.model or tokenizer.json, the tokenizer the shards were encoded with.
  std::string tokenizer_path() const;
  const DatasetIndex& index() const { return index_; }
  const std::vector<TokenShardReader>& shards() const { return shards_; }

  // Copies tokens [first, first + n) of the concatenated stream into out[n]; spans shards.
  void read(uint64_t first, uint64_t n, int32_t* out) const;

 private:
  std::string dir_;
  std::string split_;
  DatasetIndex index_;
  std::vector<TokenShardReader> shards_;
  std::vector<uint64_t> starts_;  // [shards + 1]: first global token of each shard, then the total
  uint64_t text_bytes_ = 0;
};

// A keyed pseudo-random bijection of [0, n): a balanced Feistel network on the smallest
// even number of bits that covers n, with cycle walking back into range. O(1) expected per
// call (the domain is under 4n), no tables.
class FeistelPermutation {
 public:
  FeistelPermutation(uint64_t n, uint64_t key);
  uint64_t operator()(uint64_t i) const;
  uint64_t size() const { return n_; }

 private:
  uint64_t encrypt(uint64_t x) const;

  static constexpr int kRounds = 6;
  uint64_t n_;
  int half_bits_ = 0;
  uint64_t half_mask_ = 0;
  uint64_t round_keys_[kRounds] = {};
};

class SampleLoader {
 public:
  // Refuses a dataset with fewer than seq_len + 1 tokens. The dataset must outlive the loader.
  SampleLoader(const TokenDataset& data, int seq_len, uint64_t seed);

  int seq_len() const { return seq_len_; }
  uint64_t seed() const { return seed_; }
  uint64_t samples_per_epoch() const { return samples_per_epoch_; }

  // The window (in [0, samples_per_epoch())) that global sample g reads.
  uint64_t window_of(uint64_t global_sample) const;

  // Samples first_global_sample .. + count - 1; row i of each output is one sample.
  void get_samples(uint64_t first_global_sample, int count, int32_t* tokens /*[count, T]*/,
                   int32_t* targets /*[count, T]*/) const;

  // Window w in stream order (no shuffling), e.g. for a deterministic validation pass.
  void get_window(uint64_t window, int32_t* tokens /*[T]*/, int32_t* targets /*[T]*/) const;

 private:
  const TokenDataset& data_;
  int seq_len_;
  uint64_t seed_;
  uint64_t samples_per_epoch_;
};

}  // namespace shardlm
