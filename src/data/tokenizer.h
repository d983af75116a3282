// SentencePiece tokenizer: training (BPE with byte fallback) and encode/decode.
//
// Special ids of every model trained here (docs/data-format.md): pad=0, unk=1, bos=2, eos=3.
// The model is trained with identity normalization, no dummy prefix and no whitespace
// collapsing, so decode(encode(text)) == text for any valid UTF-8 text (characters outside the
// vocabulary go through byte fallback), and encoding two texts split after a newline gives
// the concatenation of their encodings.
//
// A Tokenizer keeps the exact bytes of its .model file: checkpoints store them, and the
// fingerprint (FNV-1a 64 of those bytes) ties token shards and checkpoints to one tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

#include "core/hash.h"  // fnv1a64: the fingerprint

namespace shardlm {

// The special ids that train_tokenizer() assigns.
constexpr int kPadId = 0;
constexpr int kUnkId = 1;
constexpr int kBosId = 2;
constexpr int kEosId = 3;

class Tokenizer {
 public:
  static Tokenizer from_file(const std::string& model_path);
  // `serialized` is the content of a .model file (as returned by serialized()); `origin` names
  // where it came from in error messages.
  static Tokenizer from_serialized(std::string serialized,
                                   const std::string& origin = "serialized model");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  // Throws if an id is outside [0, vocab_size()). Control ids (pad/bos/eos) decode to "".
  std::string decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  int pad_id() const;  // -1 where the model has none
  int unk_id() const;
  int bos_id() const;
  int eos_id() const;
  const std::string& piece(int id) const;
  // What the model says of a piece, for exporting the vocabulary (GGUF token types, HF
  // tokenizer.json): its score (BPE merge priority: higher merges first) and kind (this
  // SentencePiece build cannot tell user-defined pieces, which shardlm's models do not have).
  enum class PieceType { kNormal, kUnknown, kControl, kUnused, kByte };
  float piece_score(int id) const;
  PieceType piece_type(int id) const;

  // Stable 64-bit identity of the model: fnv1a64(serialized()).
  uint64_t fingerprint() const { return fingerprint_; }
  // The .model file's bytes, exactly as loaded.
  const std::string& serialized() const { return serialized_; }
  // Writes serialized() to `path` atomically (core/fs.h), e.g. next to the token shards.
  void save(const std::string& path) const;

 private:
  Tokenizer(std::string serialized, const std::string& origin);

  std::string serialized_;
  uint64_t fingerprint_ = 0;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

struct TokenizerTrainOptions {
  std::vector<std::string> input_files;  // plain UTF-8 text, one sentence per line for training
  std::string model_prefix;              // writes <prefix>.model and <prefix>.vocab
  int vocab_size = 8000;                 // includes the 4 special and 256 byte-fallback pieces
  // Fraction of characters that get their own piece; the rest are spelled as UTF-8 bytes.
  double character_coverage = 0.9995;
  // Training lines sampled from the inputs (bounds memory on large corpora); 0 = all lines.
  int64_t max_sentences = 2'000'000;
  int max_sentence_bytes = 4192;  // longer lines are skipped during training (not at encode)
  int num_threads = 0;            // 0 = hardware concurrency
  bool verbose = false;           // SentencePiece's own training log on stderr
};

// Trains a BPE model with byte fallback and the special ids above. Throws Error on bad options,
// unreadable inputs or a SentencePiece failure.
void train_tokenizer(const TokenizerTrainOptions& options);

}  // namespace shardlm
