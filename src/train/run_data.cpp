#include "train/run_data.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "data/dataset_index.h"
#include "data/synthetic.h"

namespace fs = std::filesystem;

namespace shardlm {

std::optional<Tokenizer> open_run_tokenizer(const std::string& data) {
  if (data == kSyntheticData) return std::nullopt;
  if (!fs::exists(fs::path(data) / kDatasetTokenizerFile) &&
      !fs::exists(fs::path(data) / kDatasetTokenizerJsonFile))
    fail("--data " + data + ": no " + kDatasetTokenizerFile + " or " + kDatasetTokenizerJsonFile +
         " (prepare it with `shardlm data prepare`)");
  return open_dataset_tokenizer(data, read_dataset_index(data));
}

RunFacts run_facts(int world_size, const std::string& data, const Tokenizer* tokenizer) {
  RunFacts facts;
  facts.world_size = world_size;
  if (tokenizer) {
    facts.tokenizer_vocab = tokenizer->vocab_size();
    facts.tokenizer_path = (fs::path(data) / tokenizer->file_name()).string();
  }
  return facts;
}

RunData::RunData(const RunConfig& cfg, const Tokenizer* tokenizer) {
  if (!tokenizer) {
    const int V = cfg.model.vocab_size, T = cfg.seq_len;
    const uint64_t seed = cfg.seed;
    train_ = [=](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
      synthetic_samples(seed, V, T, first, count, tok, tgt);
    };
    val_ = [=](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
      synthetic_samples(~seed, V, T, first, count, tok, tgt);
    };
    return;
  }
  const ShardExpectations expect{tokenizer->fingerprint(),
                                 static_cast<uint64_t>(cfg.model.vocab_size)};
  train_set_ = std::make_unique<TokenDataset>(cfg.data, "train", expect);
  val_set_ = std::make_unique<TokenDataset>(cfg.data, "val", expect);
  train_loader_ = std::make_unique<SampleLoader>(*train_set_, cfg.seq_len, cfg.seed);
  val_loader_ = std::make_unique<SampleLoader>(*val_set_, cfg.seq_len, cfg.seed);
  train_ = [this](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
    train_loader_->get_samples(first, count, tok, tgt);
  };
  val_ = [this](uint64_t first, int count, int32_t* tok, int32_t* tgt) {
    val_loader_->get_samples(first, count, tok, tgt);
  };
  if (val_set_->text_bytes() > 0)
    val_tokens_per_byte_ =
        static_cast<double>(val_set_->token_count()) / static_cast<double>(val_set_->text_bytes());
}

std::optional<double> RunData::bits_per_byte(double loss) const {
  if (val_tokens_per_byte_ <= 0) return std::nullopt;
  return loss / std::log(2.0) * val_tokens_per_byte_;
}

}  // namespace shardlm
