#include "data/tokenizer.h"

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
#include "core/fs.h"

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

}  // namespace

Tokenizer::Tokenizer(std::string serialized, const std::string& origin)
    : serialized_(std::move(serialized)),
      fingerprint_(fnv1a64(serialized_)),
      processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  // SentencePiece refuses a bad model with a Status, but its trie builder (darts) throws on some
  // (a zero-length piece: fuzz_tokenizer): both are the same refusal.
  sentencepiece::util::Status status;
  try {
    status = processor_->LoadFromSerializedProto(serialized_);
  } catch (const std::exception& e) {
    fail("cannot load tokenizer model from " + origin + ": " + e.what());
  }
  if (!status.ok()) fail("cannot load tokenizer model from " + origin + ": " + status.ToString());
}

Tokenizer Tokenizer::from_file(const std::string& model_path) {
  return Tokenizer(read_file(model_path), "'" + model_path + "'");
}

Tokenizer Tokenizer::from_serialized(std::string serialized, const std::string& origin) {
  return Tokenizer(std::move(serialized), origin);
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  static_assert(sizeof(int) == sizeof(int32_t));
  std::vector<int> ids;
  const auto status = processor_->Encode(absl::string_view(text.data(), text.size()), &ids);
  if (!status.ok()) fail("tokenizer encode failed: " + status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int n_vocab = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n_vocab)
      fail("cannot decode token id " + std::to_string(ids[i]) + " at position " +
           std::to_string(i) + ": the tokenizer's vocabulary has " + std::to_string(n_vocab) +
           " ids");
  std::string text;
  const auto status = processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) fail("tokenizer decode failed: " + status.ToString());
  return text;
}

int Tokenizer::vocab_size() const {
  return processor_->GetPieceSize();
}
int Tokenizer::pad_id() const {
  return processor_->pad_id();
}
int Tokenizer::unk_id() const {
  return processor_->unk_id();
}
int Tokenizer::bos_id() const {
  return processor_->bos_id();
}
int Tokenizer::eos_id() const {
  return processor_->eos_id();
}

const std::string& Tokenizer::piece(int id) const {
  SHARDLM_CHECK(id >= 0 && id < vocab_size(), "token id " + std::to_string(id) + " out of range");
  return processor_->IdToPiece(id);
}

float Tokenizer::piece_score(int id) const {
  piece(id);  // the range check
  return processor_->GetScore(id);
}

Tokenizer::PieceType Tokenizer::piece_type(int id) const {
  piece(id);  // the range check
  if (processor_->IsUnknown(id)) return PieceType::kUnknown;
  if (processor_->IsControl(id)) return PieceType::kControl;
  if (processor_->IsUnused(id)) return PieceType::kUnused;
  if (processor_->IsByte(id)) return PieceType::kByte;
  return PieceType::kNormal;
}

void Tokenizer::save(const std::string& path) const {
  write_file_atomic(path, serialized_);
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
