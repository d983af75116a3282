#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSplitKey = 0x5348'4c4d'5350'4c54ull;  // "SHLMSPLT": fixes the split hash
constexpr size_t kReadBytes = 1 << 20;

struct TextBlock {
  std::string text;
  bool ends_document = false;
};

// Cuts the input files, in order, into blocks of at most block_bytes that end at a line
// boundary (or, for a longer line, at a UTF-8 character boundary). Holds one read buffer.
class BlockReader {
 public:
  BlockReader(const std::vector<std::string>& files, uint64_t block_bytes,
              const Tokenizer& tokenizer)
      : files_(files), block_bytes_(block_bytes), tokenizer_(tokenizer) {}

  // Fills `block` with the next block; false after the last file. Empty files give no block.
  bool next(TextBlock& block) {
    while (true) {
      if (!in_.is_open() && !open_next_file()) return false;
      while (!eof_ && available() <= block_bytes_) refill();
      if (available() == 0) {
        in_.close();
        continue;
      }
      const size_t cut = available() <= block_bytes_ ? available() : cut_point();
      block.text.assign(buffer_, pos_, cut);
      pos_ += cut;
      block.ends_document = eof_ && available() == 0;
      if (block.ends_document) in_.close();
      return true;
    }
  }

 private:
  size_t available() const { return buffer_.size() - pos_; }

  bool open_next_file() {
    if (next_file_ == files_.size()) return false;
    const auto& path = files_[next_file_++];
    in_.clear();
    in_.open(path, std::ios::binary);
    if (!in_) fail("cannot open input '" + path + "'");
    buffer_.clear();
    pos_ = 0;
    eof_ = false;
    return true;
  }

  void refill() {
    buffer_.erase(0, pos_);
    pos_ = 0;
    const size_t old_size = buffer_.size();
    const size_t want = std::max<size_t>(kReadBytes, block_bytes_ + 1);
    buffer_.resize(old_size + want);
    in_.read(buffer_.data() + old_size, static_cast<std::streamsize>(want));
    if (in_.bad()) fail("error reading input '" + files_[next_file_ - 1] + "'");
    buffer_.resize(old_size + static_cast<size_t>(in_.gcount()));
    if (in_.eof()) eof_ = true;
  }

  // Where to end a block when more than block_bytes remain: the last place in the window where
  // the tokenizer's encoding does not depend on the cut (Tokenizer::independent_cut: after a
  // newline for SentencePiece), else before the UTF-8 character that straddles its end.
  size_t cut_point() const {
    const std::string_view rest(buffer_.data() + pos_, available());
    if (const size_t cut = tokenizer_.independent_cut(rest, block_bytes_)) return cut;
    size_t cut = block_bytes_;
    while (cut > 0 && (static_cast<unsigned char>(buffer_[pos_ + cut]) & 0xC0) == 0x80) --cut;
    return cut > 0 ? cut : block_bytes_;  // not UTF-8 at all: cut anywhere
  }

  const std::vector<std::string>& files_;
  const uint64_t block_bytes_;
  const Tokenizer& tokenizer_;
  size_t next_file_ = 0;
  std::ifstream in_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
};

struct EncodeJob {
  TextBlock block;
  uint64_t text_bytes = 0;
  bool is_val = false;
  std::vector<int32_t> tokens;
  std::exception_ptr error;
  bool done = false;
};

// Encoder threads, each with its own Tokenizer instance; jobs complete in any order and the
// caller waits for them in submission order.
class EncodePool {
 public:
  EncodePool(const Tokenizer& tokenizer, int threads) {
    for (int t = 0; t < threads; ++t) {
      auto own = std::make_shared<Tokenizer>(Tokenizer::from_serialized(tokenizer.serialized()));
      threads_.emplace_back([this, own] { work(*own); });
    }
  }
  EncodePool(const EncodePool&) = delete;
  EncodePool& operator=(const EncodePool&) = delete;
  ~EncodePool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void submit(std::shared_ptr<EncodeJob> job) {
    {
      std::lock_guard lock(mu_);
      pending_.push_back(std::move(job));
    }
    work_cv_.notify_one();
  }

  void wait(const EncodeJob& job) {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return job.done; });
  }

 private:
  void work(const Tokenizer& tokenizer) {
    while (true) {
      std::shared_ptr<EncodeJob> job;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
        if (stop_) return;
        job = std::move(pending_.front());
        pending_.pop_front();
      }
      try {
        job->tokens = tokenizer.encode(job->block.text);
        if (job->block.ends_document) job->tokens.push_back(tokenizer.eos_id());
      } catch (...) {
        job->error = std::current_exception();
      }
      job->block.text = std::string();  // release the text while the job waits to be written
      {
        std::lock_guard lock(mu_);
        job->done = true;
      }
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<EncodeJob>> pending_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// The shards of one split: rolls over to a new file before a block would pass shard_tokens.
class SplitWriter {
 public:
  SplitWriter(std::string split, const PrepareOptions& options, const Tokenizer& tokenizer,
              DatasetIndex& index)
      : split_(std::move(split)), options_(options), tokenizer_(tokenizer), index_(index) {}

  void append(const std::vector<int32_t>& tokens, uint64_t text_bytes, uint64_t documents) {
    if (current_ && current_->token_count() > 0 &&
        current_->token_count() + tokens.size() > options_.shard_tokens)
      finish();
    if (!current_) {
      char name[64];
      std::snprintf(name, sizeof name, "%s_%05d.bin", split_.c_str(), next_shard_++);
      current_name_ = name;
      current_ = std::make_unique<TokenShardWriter>((fs::path(options_.out_dir) / name).string(),
                                                    tokenizer_.fingerprint(),
                                                    static_cast<uint32_t>(tokenizer_.vocab_size()));
    }
    current_->append(tokens.data(), tokens.size(), text_bytes, documents);
  }

  void finish() {
    if (!current_) return;
    const TokenShardHeader h = current_->finish();
    index_.shards.push_back({split_, current_name_, h.token_count, h.text_bytes, h.document_count});
    current_.reset();
  }

 private:
  std::string split_;
  const PrepareOptions& options_;
  const Tokenizer& tokenizer_;
  DatasetIndex& index_;
  std::unique_ptr<TokenShardWriter> current_;
  std::string current_name_;
  int next_shard_ = 0;
};

bool is_dataset_file(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name == kDatasetIndexFile || name == kDatasetTokenizerFile ||
      name == kDatasetTokenizerJsonFile)
    return true;
  const bool shard_prefix = name.rfind("train_", 0) == 0 || name.rfind("val_", 0) == 0;
  return shard_prefix && (p.extension() == ".bin" || name.ends_with(".bin.tmp"));
}

// Makes out_dir ready: refuses to mix with an existing dataset unless `overwrite`, in which case
// the old index goes first so that no half-replaced dataset ever looks complete.
void prepare_output_dir(const PrepareOptions& options) {
  const fs::path dir(options.out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    fail("cannot create output directory '" + options.out_dir + "'");
  std::vector<fs::path> existing;
  for (const auto& entry : fs::directory_iterator(dir))
    if (is_dataset_file(entry.path())) existing.push_back(entry.path());
  if (existing.empty()) return;
  if (!options.overwrite)
    fail("output directory '" + options.out_dir + "' already holds dataset files (e.g. '" +
         existing.front().filename().string() + "'); pass --overwrite to replace them");
  fs::remove(dir / kDatasetIndexFile);
  for (const auto& p : existing) fs::remove(p);
}

}  // namespace

bool is_validation_block(uint64_t block_index, double val_fraction) {
  if (val_fraction <= 0.0) return false;
  if (val_fraction >= 1.0) return true;
  // val_fraction * 2^64, computed below 2^64 so that the conversion is defined.
  const double scaled = val_fraction * 18446744073709551616.0;
  const uint64_t threshold =
      scaled >= 18446744073709549568.0 ? UINT64_MAX : static_cast<uint64_t>(scaled);
  return splitmix64(block_index ^ kSplitKey) < threshold;
}

PrepareResult prepare_token_shards(const PrepareOptions& options,
                                   const std::function<void(const PrepareProgress&)>& on_progress) {
  if (options.input_files.empty()) fail("data prepare needs at least one --input file");
  if (options.out_dir.empty()) fail("data prepare needs --out");
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0))
    fail("--val-fraction must be in [0, 1), got " + std::to_string(options.val_fraction));
  if (options.shard_tokens == 0) fail("--shard-tokens must be positive");
  if (options.block_bytes < 16)
    fail("--block-bytes must be at least 16, got " + std::to_string(options.block_bytes));
  if (options.num_threads < 0) fail("--threads must be >= 0");
  uint64_t bytes_total = 0;
  for (const auto& f : options.input_files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec || !fs::is_regular_file(f)) fail("input '" + f + "' is not a readable file");
    bytes_total += size;
  }

  const Tokenizer tokenizer = Tokenizer::from_file(options.tokenizer_path);
  if (tokenizer.eos_id() < 0)
    fail("tokenizer '" + options.tokenizer_path +
         "' has no EOS id; documents are separated by EOS" +
         (tokenizer.kind() == TokenizerKind::kByteLevelBpe
              ? " (a tokenizer.json's EOS is its special added token <|endoftext|>, "
                "<|end_of_text|> or </s>)"
              : ""));

  prepare_output_dir(options);
  tokenizer.save((fs::path(options.out_dir) / tokenizer.file_name()).string());

  DatasetIndex index;
  index.tokenizer_file = tokenizer.file_name();
  index.tokenizer_fingerprint = tokenizer.fingerprint();
  index.vocab_size = static_cast<uint32_t>(tokenizer.vocab_size());
  index.val_fraction = options.val_fraction;
  index.block_bytes = options.block_bytes;
  index.shard_tokens = options.shard_tokens;
  SplitWriter train(std::string("train"), options, tokenizer, index);
  SplitWriter val(std::string("val"), options, tokenizer, index);

  const int threads = options.num_threads > 0
                          ? options.num_threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Enough queued blocks to keep every encoder busy while the writer waits for the oldest.
  const size_t max_in_flight = static_cast<size_t>(threads) * 4;

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  PrepareProgress progress;
  progress.bytes_total = bytes_total;
  double last_report = -1.0;

  BlockReader reader(options.input_files, options.block_bytes, tokenizer);
  uint64_t next_block_index = 0;
  {
    EncodePool pool(tokenizer, threads);
    std::deque<std::shared_ptr<EncodeJob>> in_flight;  // submission (= file) order
    while (true) {
      while (in_flight.size() < max_in_flight) {
        auto job = std::make_shared<EncodeJob>();
        if (!reader.next(job->block)) break;
        job->text_bytes = job->block.text.size();
        job->is_val = is_validation_block(next_block_index++, options.val_fraction);
        pool.submit(job);
        in_flight.push_back(std::move(job));
      }
      if (in_flight.empty()) break;
      const auto job = std::move(in_flight.front());
      in_flight.pop_front();
      pool.wait(*job);
      if (job->error) std::rethrow_exception(job->error);
      (job->is_val ? val : train)
          .append(job->tokens, job->text_bytes, job->block.ends_document ? 1 : 0);
      progress.bytes_done += job->text_bytes;
      progress.tokens_done += job->tokens.size();
      if (on_progress && elapsed() - last_report >= 0.1) {
        last_report = elapsed();
        progress.seconds = last_report;
        on_progress(progress);
      }
    }
  }
  train.finish();
  val.finish();

  if (index.split_shards("train").empty()) fail("the inputs hold no text: nothing was written");
  if (options.val_fraction > 0.0 && index.split_shards("val").empty())
    fail("no block fell into the val split: the inputs have only " +
         std::to_string(next_block_index) + " blocks of --block-bytes " +
         std::to_string(options.block_bytes) +
         "; use a smaller --block-bytes or a larger --val-fraction");
  write_dataset_index(options.out_dir, index);

  progress.seconds = elapsed();
  progress.finished = true;
  if (on_progress) on_progress(progress);
  return {index, progress.bytes_done, progress.tokens_done, progress.seconds};
}

}  // namespace shardlm
