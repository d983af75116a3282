// `shardlm data prepare`: text files -> token shards, streamed with bounded memory.
//
// Each input file is one document. Files are cut into blocks of about block_bytes where the
// tokenizer's encoding does not depend on the cut (Tokenizer::independent_cut: line ends for
// SentencePiece; a line longer than a block is cut at a UTF-8 character boundary); blocks are
// encoded in parallel and written in input order. Block index i (counted over all files in
// input order) belongs to the val split iff is_validation_block(i, val_fraction); the last
// block of a document ends with EOS. A shard is closed before a block would take it past
// shard_tokens (so a shard holds whole blocks and exceeds the cap only if one block does).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset_index.h"

namespace shardlm {

struct PrepareOptions {
  std::vector<std::string> input_files;
  // A SentencePiece .model or a byte-level BPE tokenizer.json; copied into out_dir under its
  // kind's name (tokenizer.model or tokenizer.json).
  std::string tokenizer_path;
  std::string out_dir;
  double val_fraction = 0.01;
  uint64_t shard_tokens = 100'000'000;
  uint64_t block_bytes = 16384;  // the unit of the train/val split
  int num_threads = 0;           // encoder threads; 0 = hardware concurrency
  bool overwrite = false;        // replace an existing dataset in out_dir
};

struct PrepareProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t tokens_done = 0;
  double seconds = 0.0;
  bool finished = false;
};

struct PrepareResult {
  DatasetIndex index;
  uint64_t input_bytes = 0;
  uint64_t tokens = 0;
  double seconds = 0.0;
};

// The split rule: a keyed hash of the block index, compared with val_fraction. Depends only on
// the index, so the same inputs always split the same way, whatever the thread count.
bool is_validation_block(uint64_t block_index, double val_fraction);

// Runs the whole pipeline; `on_progress` (optional) is called from the calling thread about
// every 100 ms and once at the end. Throws Error on bad options or I/O failures; index.txt is
// written last, so an interrupted run leaves no usable dataset behind.
PrepareResult prepare_token_shards(
    const PrepareOptions& options,
    const std::function<void(const PrepareProgress&)>& on_progress = {});

}  // namespace shardlm
