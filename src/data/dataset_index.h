// index.txt: the manifest of a prepared token dataset directory. `shardlm data prepare` writes
// it last (atomically), so its presence marks a complete dataset; the loader opens exactly the
// shards it lists and checks their headers against it. Format: docs/data-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace shardlm {

constexpr const char* kDatasetIndexFile = "index.txt";
// The tokenizer's copy in the directory, by kind (Tokenizer::file_name()).
constexpr const char* kDatasetTokenizerFile = "tokenizer.model";
constexpr const char* kDatasetTokenizerJsonFile = "tokenizer.json";

struct DatasetShardEntry {
  std::string split;  // "train" or "val"
  std::string file;   // name inside the dataset directory
  uint64_t tokens = 0;
  uint64_t text_bytes = 0;
  uint64_t documents = 0;
};

struct DatasetIndex {
  std::string tokenizer_file = kDatasetTokenizerFile;  // or kDatasetTokenizerJsonFile
  uint64_t tokenizer_fingerprint = 0;
  uint32_t vocab_size = 0;
  // How the data was split, recorded so a dataset can be reproduced.
  double val_fraction = 0.0;
  uint64_t block_bytes = 0;
  uint64_t shard_tokens = 0;
  std::vector<DatasetShardEntry> shards;  // train shards in order, then val shards in order

  std::vector<DatasetShardEntry> split_shards(const std::string& split) const;
};

// Writes <dir>/index.txt through a temporary file and a rename.
void write_dataset_index(const std::string& dir, const DatasetIndex& index);
// Reads <dir>/index.txt; throws Error naming the file and line on anything malformed.
DatasetIndex read_dataset_index(const std::string& dir);
// <dir>/<index.tokenizer_file> (tokenizer.model or tokenizer.json), refused naming the file
// unless its fingerprint is the one the index records (a damaged file may still parse).
Tokenizer open_dataset_tokenizer(const std::string& dir, const DatasetIndex& index);

}  // namespace shardlm
