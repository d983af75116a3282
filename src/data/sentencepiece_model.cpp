#include "data/sentencepiece_model.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "data/tokenizer.h"

namespace shardlm {

namespace {

// Feeds the training files to SentencePiece line by line, so that file names may contain the
// commas that its --input flag would split on.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& files) : files_(files) { advance(); }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return status_; }

 private:
  void advance() {
    while (true) {
      if (in_.is_open() && std::getline(in_, line_)) return;
      if (in_.is_open() && in_.bad()) {
        status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal,
                                              "error reading '" + files_[next_file_ - 1] + "'");
        done_ = true;
        return;
      }
      in_.close();
      if (next_file_ == files_.size()) {
        done_ = true;
        return;
      }
      in_.clear();
      in_.open(files_[next_file_++], std::ios::binary);
      if (!in_) {
        status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound,
                                              "cannot open '" + files_[next_file_ - 1] + "'");
        done_ = true;
        return;
      }
    }
  }

  const std::vector<std::string>& files_;
  size_t next_file_ = 0;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  sentencepiece::util::Status status_;
};

class SentencePieceModel final : public TokenizerModel {
 public:
  SentencePieceModel(const std::string& serialized, const std::string& origin) {
    // SentencePiece refuses a bad model with a Status, but its trie builder (darts) throws on
    // some (a zero-length piece: fuzz_tokenizer): both are the same refusal.
    sentencepiece::util::Status status;
    try {
      status = processor_.LoadFromSerializedProto(serialized);
    } catch (const std::exception& e) {
      fail("cannot load tokenizer model from " + origin + ": " + e.what());
    }
    if (!status.ok()) fail("cannot load tokenizer model from " + origin + ": " + status.ToString());
  }

  TokenizerKind kind() const override { return TokenizerKind::kSentencePiece; }

  std::vector<int32_t> encode(std::string_view text) const override {
    static_assert(sizeof(int) == sizeof(int32_t));
    std::vector<int> ids;
    const auto status = processor_.Encode(absl::string_view(text.data(), text.size()), &ids);
    if (!status.ok()) fail("tokenizer encode failed: " + status.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    const auto status = processor_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    if (!status.ok()) fail("tokenizer decode failed: " + status.ToString());
    return text;
  }

  int vocab_size() const override { return processor_.GetPieceSize(); }
  int pad_id() const override { return processor_.pad_id(); }
  int unk_id() const override { return processor_.unk_id(); }
  int bos_id() const override { return processor_.bos_id(); }
  int eos_id() const override { return processor_.eos_id(); }
  const std::string& piece(int id) const override { return processor_.IdToPiece(id); }
  float piece_score(int id) const override { return processor_.GetScore(id); }

  // This SentencePiece build cannot tell user-defined pieces, which shardlm's models lack.
  PieceType piece_type(int id) const override {
    if (processor_.IsUnknown(id)) return PieceType::kUnknown;
    if (processor_.IsControl(id)) return PieceType::kControl;
    if (processor_.IsUnused(id)) return PieceType::kUnused;
    if (processor_.IsByte(id)) return PieceType::kByte;
    return PieceType::kNormal;
  }

  std::vector<std::pair<std::string, std::string>> merges() const override { return {}; }

  // After the last newline before limit: shardlm's models are trained one line per sentence,
  // so no piece crosses a line end (docs/data-format.md).
  size_t independent_cut(std::string_view text, size_t limit) const override {
    const size_t newline = text.substr(0, limit).rfind('\n');
    return newline == std::string_view::npos ? 0 : newline + 1;
  }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

std::unique_ptr<TokenizerModel> make_sentencepiece_model(const std::string& serialized,
                                                         const std::string& origin) {
  return std::make_unique<SentencePieceModel>(serialized, origin);
}

void train_tokenizer(const TokenizerTrainOptions& options) {
  if (options.input_files.empty()) fail("tokenizer training needs at least one input file");
  for (const auto& f : options.input_files)
    if (!std::filesystem::is_regular_file(f))
      fail("tokenizer training input '" + f + "' is not a readable file");
  if (options.model_prefix.empty()) fail("tokenizer training needs a model prefix");
  // 4 special ids + 256 byte pieces, plus room for at least a few learned pieces.
  if (options.vocab_size < 264)
    fail("--vocab-size " + std::to_string(options.vocab_size) +
         " is too small: byte fallback needs 260 ids (4 special + 256 bytes) plus learned pieces; "
         "use at least 264");
  if (!(options.character_coverage > 0.0 && options.character_coverage <= 1.0))
    fail("--character-coverage must be in (0, 1], got " +
         std::to_string(options.character_coverage));
  if (options.max_sentences < 0) fail("max sentences must be >= 0");

  const int threads = options.num_threads > 0 ? options.num_threads
                                              : std::max(1u, std::thread::hardware_concurrency());
  std::ostringstream coverage;
  coverage.precision(17);
  coverage << options.character_coverage;
  const std::unordered_map<std::string, std::string> args = {
      {"model_prefix", options.model_prefix},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", coverage.str()},
      {"byte_fallback", "true"},
      {"pad_id", std::to_string(kPadId)},
      {"unk_id", std::to_string(kUnkId)},
      {"bos_id", std::to_string(kBosId)},
      {"eos_id", std::to_string(kEosId)},
      // Exact round trip and chunk-independent encoding: no NFKC, no whitespace collapsing,
      // no implicit leading space per encode() call.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "true"},
      {"input_sentence_size", std::to_string(options.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", std::to_string(options.max_sentence_bytes)},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", options.verbose ? "0" : "2"},
  };
  LineIterator lines(options.input_files);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines);
  if (!status.ok()) fail("tokenizer training failed: " + status.ToString());
}

}  // namespace shardlm
