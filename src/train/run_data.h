// What a run trains and validates on: seeded synthetic tokens (--data synthetic), or a
// prepared dataset (shardlm data prepare: token shards of a train and a val split, with the
// tokenizer they were encoded with) read through SampleLoaders.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/resolve_run_config.h"
#include "train/run_config.h"
#include "train/trainer.h"

namespace shardlm {

// The tokenizer of the dataset at `data` (its tokenizer.model or tokenizer.json); nullopt for
// synthetic data.
// Throws naming --data when the directory has none.
std::optional<Tokenizer> open_run_tokenizer(const std::string& data);

// What resolve_run_config needs to know about the tokenizer.
RunFacts run_facts(int world_size, const std::string& data, const Tokenizer* tokenizer);

class RunData {
 public:
  // Opens and validates both splits against the tokenizer and the model's vocabulary (throws
  // naming the shard); `tokenizer` is null for synthetic data.
  RunData(const RunConfig& cfg, const Tokenizer* tokenizer);
  RunData(const RunData&) = delete;  // the sources point into this object
  RunData& operator=(const RunData&) = delete;

  const BatchSource& train() const { return train_; }
  const BatchSource& val() const { return val_; }
  // Validation bits per byte for a loss in nats per token: loss / ln 2 x tokens per UTF-8 byte
  // of the val text, so runs with different tokenizers compare. nullopt for synthetic data.
  std::optional<double> bits_per_byte(double loss) const;

 private:
  std::unique_ptr<TokenDataset> train_set_, val_set_;
  std::unique_ptr<SampleLoader> train_loader_, val_loader_;
  BatchSource train_, val_;
  double val_tokens_per_byte_ = 0;
};

}  // namespace shardlm
