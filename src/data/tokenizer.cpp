#include "data/tokenizer.h"

#include "core/error.h"
#include "core/fs.h"
#include "data/bpe_model.h"
#include "data/sentencepiece_model.h"
#include "data/tokenizer_json.h"

namespace shardlm {

Tokenizer::Tokenizer(std::string serialized, const std::string& origin)
    : serialized_(std::move(serialized)),
      fingerprint_(fnv1a64(serialized_)),
      model_(looks_like_tokenizer_json(serialized_)
                 ? make_byte_level_bpe_model(serialized_, origin)
                 : make_sentencepiece_model(serialized_, origin)) {}

Tokenizer Tokenizer::from_file(const std::string& model_path) {
  return Tokenizer(read_file(model_path), "'" + model_path + "'");
}

Tokenizer Tokenizer::from_serialized(std::string serialized, const std::string& origin) {
  return Tokenizer(std::move(serialized), origin);
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

const char* Tokenizer::file_name() const {
  return kind() == TokenizerKind::kByteLevelBpe ? "tokenizer.json" : "tokenizer.model";
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  return model_->encode(text);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int n_vocab = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n_vocab)
      fail("cannot decode token id " + std::to_string(ids[i]) + " at position " +
           std::to_string(i) + ": the tokenizer's vocabulary has " + std::to_string(n_vocab) +
           " ids");
  return model_->decode(ids);
}

int Tokenizer::vocab_size() const {
  return model_->vocab_size();
}
int Tokenizer::pad_id() const {
  return model_->pad_id();
}
int Tokenizer::unk_id() const {
  return model_->unk_id();
}
int Tokenizer::bos_id() const {
  return model_->bos_id();
}
int Tokenizer::eos_id() const {
  return model_->eos_id();
}

const std::string& Tokenizer::piece(int id) const {
  SHARDLM_CHECK(id >= 0 && id < vocab_size(), "token id " + std::to_string(id) + " out of range");
  return model_->piece(id);
}

float Tokenizer::piece_score(int id) const {
  piece(id);  // the range check
  return model_->piece_score(id);
}

Tokenizer::PieceType Tokenizer::piece_type(int id) const {
  piece(id);  // the range check
  return model_->piece_type(id);
}

void Tokenizer::save(const std::string& path) const {
  write_file_atomic(path, serialized_);
}

}  // namespace shardlm
