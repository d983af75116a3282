// What a tokenizer kind implements behind data/tokenizer.h's Tokenizer: SentencePiece
// (data/sentencepiece_model.h) and byte-level BPE from a tokenizer.json (data/bpe_model.h).
// Internal to src/data: everything else holds a Tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardlm {

enum class TokenizerKind { kSentencePiece, kByteLevelBpe };

// What a model says of a piece, for exporting the vocabulary (GGUF token types, HF
// tokenizer.json).
enum class PieceType { kNormal, kUnknown, kControl, kUnused, kByte, kUserDefined };

class TokenizerModel {
 public:
  virtual ~TokenizerModel() = default;
  virtual TokenizerKind kind() const = 0;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids are in [0, vocab_size()) (the Tokenizer checked them).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int pad_id() const = 0;  // -1 where the model has none
  virtual int unk_id() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual const std::string& piece(int id) const = 0;  // id in range
  virtual float piece_score(int id) const = 0;
  virtual PieceType piece_type(int id) const = 0;
  // BPE merges by rank (empty for SentencePiece, which ranks pieces by score).
  virtual std::vector<std::pair<std::string, std::string>> merges() const = 0;
  // The largest p in (0, limit] such that encoding text[0, p) and then text[p, ...) gives the
  // tokens of encoding both at once, whatever follows `text`; 0 when there is none. `text`
  // extends past `limit` (at least one byte), so that p = limit can be judged.
  virtual size_t independent_cut(std::string_view text, size_t limit) const = 0;
};

}  // namespace shardlm
