#include "convert/hf_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>

#include "core/fs.h"

namespace shardlm {

namespace {

using Type = Tokenizer::PieceType;

// Byte lengths of the UTF-8 characters of s (a malformed lead byte counts as one).
std::vector<size_t> char_boundaries(const std::string& s) {
  std::vector<size_t> cuts;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    i += c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (i < s.size()) cuts.push_back(i);
  }
  return cuts;
}

struct Merge {
  float score;
  int piece, left, right;
};

// Every (left, right) split of a normal piece into two normal pieces, highest score first:
// SentencePiece's BPE merges the adjacent pair whose union scores highest, which is what the
// `tokenizers` BPE does with merges ranked in this order (transformers' SentencePieceExtractor
// builds the same list).
nlohmann::json merges(const Tokenizer& tok) {
  std::unordered_map<std::string, int> normal;
  for (int id = 0; id < tok.vocab_size(); ++id)
    if (tok.piece_type(id) == Type::kNormal) normal.emplace(tok.piece(id), id);
  std::vector<Merge> all;
  for (const auto& [piece, id] : normal)
    for (size_t cut : char_boundaries(piece)) {
      auto l = normal.find(piece.substr(0, cut)), r = normal.find(piece.substr(cut));
      if (l != normal.end() && r != normal.end())
        all.push_back({tok.piece_score(id), id, l->second, r->second});
    }
  std::sort(all.begin(), all.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.piece, a.left, a.right) < std::tie(b.piece, b.left, b.right);
  });
  nlohmann::json out = nlohmann::json::array();
  for (const Merge& m : all) out.push_back({tok.piece(m.left), tok.piece(m.right)});
  return out;
}

nlohmann::ordered_json replace(const std::string& from, const std::string& to) {
  return {{"type", "Replace"}, {"pattern", {{"String", from}}}, {"content", to}};
}

nlohmann::ordered_json tokenizer_json(const Tokenizer& tok) {
  const std::string space_mark = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space
  nlohmann::ordered_json added = nlohmann::ordered_json::array(), vocab;
  for (int id = 0; id < tok.vocab_size(); ++id) {
    vocab[tok.piece(id)] = id;
    const Type type = tok.piece_type(id);
    if (type == Type::kControl || type == Type::kUnknown)
      added.push_back({{"id", id},
                       {"content", tok.piece(id)},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
  }
  nlohmann::ordered_json model = {{"type", "BPE"},
                                  {"dropout", nullptr},
                                  {"unk_token", tok.unk_id() >= 0 ? tok.piece(tok.unk_id()) : ""},
                                  {"continuing_subword_prefix", nullptr},
                                  {"end_of_word_suffix", nullptr},
                                  {"fuse_unk", true},
                                  {"byte_fallback", true},
                                  {"ignore_merges", false},
                                  {"vocab", vocab},
                                  {"merges", merges(tok)}};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", replace(" ", space_mark)},
      {"pre_tokenizer", nullptr},
      {"model", model},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", {replace(space_mark, " "), {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}}};
}

void put_token(nlohmann::ordered_json& j, const char* key, const Tokenizer& tok, int id) {
  if (id >= 0) j[key] = tok.piece(id);
}

}  // namespace

SpecialIds special_ids(const Tokenizer& tok) {
  return {tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.unk_id()};
}

void write_hf_tokenizer(const Tokenizer& tok, int model_max_length,
                        const std::filesystem::path& dir) {
  const bool bpe = tok.kind() == TokenizerKind::kByteLevelBpe;
  write_file_atomic(dir / "tokenizer.json", bpe ? tok.serialized() : tokenizer_json(tok).dump(1));
  nlohmann::ordered_json special;
  put_token(special, "bos_token", tok, tok.bos_id());
  put_token(special, "eos_token", tok, tok.eos_id());
  put_token(special, "unk_token", tok, tok.unk_id());
  put_token(special, "pad_token", tok, tok.pad_id());
  write_file_atomic(dir / "special_tokens_map.json", special.dump(2));
  nlohmann::ordered_json config = special;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["add_bos_token"] = false;
  config["add_eos_token"] = false;
  config["clean_up_tokenization_spaces"] = false;
  config["model_max_length"] = model_max_length;
  write_file_atomic(dir / "tokenizer_config.json", config.dump(2));
  if (!bpe) tok.save((dir / "tokenizer.model").string());
}

}  // namespace shardlm
