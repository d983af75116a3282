// The tokenizer of a dataset, a checkpoint and `shardlm generate`, of one of two kinds
// (docs/data-format.md):
//   - SentencePiece BPE with byte fallback (a .model file), trained here by train_tokenizer():
//     special ids pad=0, unk=1, bos=2, eos=3, identity normalization, no dummy prefix and no
//     whitespace collapsing, so decode(encode(text)) == text for any valid UTF-8 text;
//   - byte-level BPE from a Hugging Face tokenizer.json of GPT-2's kind (data/bpe_model.h), whose
//     ids are the `tokenizers` library's; EOS is its <|endoftext|>.
// Which one is told by the bytes (a tokenizer.json is JSON text, a .model a protobuf), so that
// a checkpoint's stored tokenizer needs no name.
//
// A Tokenizer keeps the exact bytes of its file: checkpoints store them, and the fingerprint
// (FNV-1a 64 of those bytes) ties token shards and checkpoints to one tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/hash.h"  // fnv1a64: the fingerprint
#include "data/tokenizer_model.h"

namespace shardlm {

// The special ids that train_tokenizer() assigns.
constexpr int kPadId = 0;
constexpr int kUnkId = 1;
constexpr int kBosId = 2;
constexpr int kEosId = 3;

class Tokenizer {
 public:
  // A .model or a tokenizer.json.
  static Tokenizer from_file(const std::string& model_path);
  // `serialized` is the content of such a file (as returned by serialized()); `origin` names
  // where it came from in error messages.
  static Tokenizer from_serialized(std::string serialized,
                                   const std::string& origin = "serialized model");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  TokenizerKind kind() const { return model_->kind(); }
  // The file name a dataset directory stores it under: tokenizer.model or tokenizer.json.
  const char* file_name() const;

  // Never adds BOS or EOS (for a tokenizer.json: encode(text, add_special_tokens=False)).
  std::vector<int32_t> encode(std::string_view text) const;
  // Throws if an id is outside [0, vocab_size()). Control ids (pad/bos/eos, special added
  // tokens) decode to "".
  std::string decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  int pad_id() const;  // -1 where the model has none
  int unk_id() const;
  int bos_id() const;
  int eos_id() const;
  const std::string& piece(int id) const;
  // What the model says of a piece, for exporting the vocabulary (GGUF token types, HF
  // tokenizer.json): its score (SentencePiece's merge priority: higher merges first; 0 for
  // byte-level BPE) and kind (kUserDefined: a tokenizer.json's non-special added token).
  using PieceType = shardlm::PieceType;
  float piece_score(int id) const;
  PieceType piece_type(int id) const;
  // Byte-level BPE's merges by rank (GGUF's tokenizer.ggml.merges); empty for SentencePiece.
  std::vector<std::pair<std::string, std::string>> merges() const { return model_->merges(); }

  // Where `data prepare` may end a block: the largest p in (0, limit] such that encoding
  // text[0, p) and the rest separately gives the tokens of encoding them together, whatever
  // follows; 0 when there is none. SentencePiece: after the last newline; byte-level BPE: before
  // a whitespace character that follows a non-space one (line ends first), outside added tokens.
  // `text` extends at least one byte past `limit`.
  size_t independent_cut(std::string_view text, size_t limit) const {
    return model_->independent_cut(text, limit);
  }

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
  std::unique_ptr<TokenizerModel> model_;
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
