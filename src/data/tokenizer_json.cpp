#include "data/tokenizer_json.h"

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"

namespace shardlm {

namespace {

using Json = nlohmann::json;

// Errors name the file and the field: "tokenizer.json 'x.json': model.type is ...".
class Reader {
 public:
  explicit Reader(const std::string& origin) : origin_(origin) {}

  [[noreturn]] void bad(const std::string& field, const std::string& why) const {
    fail("tokenizer.json " + origin_ + ": " + field + " " + why);
  }

  // j[key] when present and not null; nullptr otherwise.
  const Json* find(const Json& j, const char* key) const {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  const Json& object(const Json& j, const char* key, const std::string& field) const {
    const Json* v = find(j, key);
    if (!v) bad(field, "is missing");
    if (!v->is_object()) bad(field, "is not a JSON object");
    return *v;
  }
  std::string string(const Json& j, const char* key, const std::string& field) const {
    const Json* v = find(j, key);
    if (!v) bad(field, "is missing");
    if (!v->is_string()) bad(field, "is not a string");
    return v->get<std::string>();
  }
  bool boolean(const Json& j, const char* key, bool fallback, const std::string& field) const {
    const Json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(field, "is not true or false");
    return v->get<bool>();
  }
  int id(const Json& v, const std::string& field) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 0x7FFFFFFF)
      bad(field, "is not a token id (an integer in [0, 2^31))");
    return static_cast<int>(v.get<uint64_t>());
  }
  void require_unset(const Json& j, const char* key, const std::string& field,
                     const std::string& why) const {
    const Json* v = find(j, key);
    const bool unset = !v || (v->is_string() && v->get<std::string>().empty()) ||
                       (v->is_boolean() && !v->get<bool>()) || (v->is_number() && *v == 0);
    if (!unset) bad(field, "is " + v->dump() + ": " + why);
  }

 private:
  const std::string& origin_;
};

std::string type_of(const Reader& r, const Json& j, const std::string& field) {
  return r.string(j, "type", field + ".type");
}

std::vector<std::string> read_vocab(const Reader& r, const Json& model) {
  const Json& vocab = r.object(model, "vocab", "model.vocab");
  std::vector<std::string> by_id(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [piece, v] : vocab.items()) {
    const int id = r.id(v, "model.vocab['" + piece + "']");
    if (static_cast<size_t>(id) >= by_id.size())
      r.bad("model.vocab['" + piece + "']",
            "has id " + std::to_string(id) + ": the " + std::to_string(by_id.size()) +
                " entries must have the ids 0.." + std::to_string(by_id.size() - 1));
    if (seen[id])
      r.bad("model.vocab",
            "gives id " + std::to_string(id) + " to both '" + by_id[id] + "' and '" + piece + "'");
    seen[id] = true;
    by_id[id] = piece;
  }
  return by_id;
}

std::pair<std::string, std::string> read_merge(const Reader& r, const Json& m, size_t rank) {
  const std::string field = "model.merges[" + std::to_string(rank) + "]";
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == s.size() ||
        s.find(' ', space + 1) != std::string::npos)
      r.bad(field, "'" + s + "' is not two pieces separated by one space");
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  r.bad(field, "is neither \"a b\" nor [\"a\", \"b\"]");
}

std::vector<std::pair<std::string, std::string>> read_merges(
    const Reader& r, const Json& model, const std::unordered_map<std::string, int>& ids) {
  const Json* merges = r.find(model, "merges");
  if (!merges) r.bad("model.merges", "is missing");
  if (!merges->is_array()) r.bad("model.merges", "is not an array");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges->size());
  for (const Json& m : *merges) {
    auto merge = read_merge(r, m, out.size());
    const std::string field = "model.merges[" + std::to_string(out.size()) + "]";
    for (const std::string& p : {merge.first, merge.second, merge.first + merge.second})
      if (!ids.count(p))
        r.bad(field,
              "'" + merge.first + " " + merge.second + "': '" + p + "' is not in model.vocab");
    out.push_back(std::move(merge));
  }
  return out;
}

void check_model(const Reader& r, const Json& model) {
  const std::string type = type_of(r, model, "model");
  if (type != "BPE")
    r.bad("model.type",
          "is '" + type + "': shardlm reads byte-level BPE tokenizers (model.type BPE)");
  r.require_unset(model, "dropout", "model.dropout", "BPE dropout samples merges at random");
  r.require_unset(model, "continuing_subword_prefix", "model.continuing_subword_prefix",
                  "byte-level BPE has no subword prefix");
  r.require_unset(model, "end_of_word_suffix", "model.end_of_word_suffix",
                  "byte-level BPE has no end-of-word suffix");
  r.require_unset(model, "byte_fallback", "model.byte_fallback",
                  "byte fallback is SentencePiece's (use its tokenizer.model)");
}

// "'NFC'" for a component {"type": "NFC", ...}, else the JSON text.
std::string describe(const Json& component) {
  const auto type = component.is_object() ? component.find("type") : component.end();
  if (type == component.end() || !type->is_string()) return component.dump();
  std::string out = "'";
  out += type->get<std::string>();
  out += "'";
  return out;
}

void check_pipeline(const Reader& r, const Json& j) {
  if (const Json* n = r.find(j, "normalizer"))
    r.bad("normalizer", "is " + describe(*n) +
                            ": shardlm's byte-level BPE reads tokenizers without a normalizer");
  const Json& pre = r.object(j, "pre_tokenizer", "pre_tokenizer");
  const std::string type = type_of(r, pre, "pre_tokenizer");
  if (type != "ByteLevel")
    r.bad("pre_tokenizer.type",
          "is '" + type + "': shardlm reads GPT-2's ByteLevel pre-tokenizer only");
  if (r.boolean(pre, "add_prefix_space", true, "pre_tokenizer.add_prefix_space"))
    r.bad("pre_tokenizer.add_prefix_space",
          "is true (or missing: the library's default): a space added before every text would "
          "make encoding depend on where text is cut; shardlm reads add_prefix_space false");
  if (!r.boolean(pre, "use_regex", true, "pre_tokenizer.use_regex"))
    r.bad("pre_tokenizer.use_regex", "is false: shardlm splits with GPT-2's regular expression");
  if (const Json* d = r.find(j, "decoder")) {
    if (!d->is_object()) r.bad("decoder", "is not a JSON object");
    const std::string dt = type_of(r, *d, "decoder");
    if (dt != "ByteLevel") r.bad("decoder.type", "is '" + dt + "': shardlm decodes ByteLevel");
  }
}

std::vector<AddedTokenSpec> read_added(const Reader& r, const Json& j,
                                       const std::unordered_map<std::string, int>& ids,
                                       int vocab_size) {
  std::vector<AddedTokenSpec> out;
  const Json* added = r.find(j, "added_tokens");
  if (!added) return out;
  if (!added->is_array()) r.bad("added_tokens", "is not an array");
  int next_id = vocab_size;  // ids of added tokens outside the vocabulary, in file order
  std::unordered_map<std::string, bool> contents;
  for (const Json& a : *added) {
    const std::string field = "added_tokens[" + std::to_string(out.size()) + "]";
    if (!a.is_object()) r.bad(field, "is not a JSON object");
    AddedTokenSpec t;
    t.content = r.string(a, "content", field + ".content");
    if (t.content.empty()) r.bad(field + ".content", "is empty");
    if (!contents.emplace(t.content, true).second)
      r.bad(field + ".content", "'" + t.content + "' is added twice");
    const Json* id = r.find(a, "id");
    if (!id) r.bad(field + ".id", "is missing");
    t.id = r.id(*id, field + ".id");
    t.special = r.boolean(a, "special", false, field + ".special");
    t.normalized = r.boolean(a, "normalized", !t.special, field + ".normalized");
    for (const char* k : {"single_word", "lstrip", "rstrip"})
      if (r.boolean(a, k, false, field + "." + k))
        r.bad(field + "." + k,
              "is true ('" + t.content + "'): shardlm matches added tokens exactly");
    const auto in_vocab = ids.find(t.content);
    const int want = in_vocab != ids.end() ? in_vocab->second : next_id++;
    if (t.id != want)
      r.bad(field + ".id",
            "is " + std::to_string(t.id) + " for '" + t.content + "', but `tokenizers` gives it " +
                std::to_string(want) +
                (in_vocab != ids.end()
                     ? " (its model.vocab id)"
                     : " (the next id after the vocabulary and the added tokens before it)"));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

bool looks_like_tokenizer_json(std::string_view bytes) {
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && bytes[first] == '{';
}

ByteLevelBpeSpec parse_tokenizer_json(std::string_view json, const std::string& origin) {
  const Reader r(origin);
  Json j;
  try {
    j = Json::parse(json);
  } catch (const Json::exception& e) {  // a syntax error, or a number past a double's range
    fail("tokenizer.json " + origin + " is not valid JSON (truncated or damaged?): " + e.what());
  }
  if (!j.is_object()) fail("tokenizer.json " + origin + " is not a JSON object");
  const Json& model = r.object(j, "model", "model");
  check_model(r, model);
  check_pipeline(r, j);
  ByteLevelBpeSpec spec;
  spec.vocab = read_vocab(r, model);
  std::unordered_map<std::string, int> ids;
  ids.reserve(spec.vocab.size());
  for (size_t i = 0; i < spec.vocab.size(); ++i) ids.emplace(spec.vocab[i], static_cast<int>(i));
  spec.merges = read_merges(r, model, ids);
  spec.ignore_merges = r.boolean(model, "ignore_merges", false, "model.ignore_merges");
  if (const Json* unk = r.find(model, "unk_token")) {
    if (!unk->is_string()) r.bad("model.unk_token", "is not a string");
    if (ids.count(unk->get<std::string>())) spec.unk_token = unk->get<std::string>();
  }
  spec.added = read_added(r, j, ids, static_cast<int>(spec.vocab.size()));
  return spec;
}

}  // namespace shardlm
