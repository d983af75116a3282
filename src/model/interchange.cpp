#include "model/interchange.h"

#include "core/error.h"
#include "model/gpt2/interchange.h"
#include "model/llama/interchange.h"

namespace shardlm {

namespace {
const std::vector<const FamilyInterchange*>& interchanges() {
  static const std::vector<const FamilyInterchange*> all = {&gpt2_interchange(),
                                                            &llama_interchange()};
  return all;
}

std::string known(std::string (FamilyInterchange::*what)() const) {
  std::string names;
  for (const auto* i : interchanges()) names += (names.empty() ? "" : ", ") + (i->*what)();
  return names;
}
}  // namespace

const FamilyInterchange& family_interchange(const std::string& family) {
  for (const auto* i : interchanges())
    if (i->family() == family) return *i;
  fail("model family '" + family + "' has no conversion mapping (families with one: " +
       known(&FamilyInterchange::family) + ")");
}

const FamilyInterchange& family_interchange_for_hf(const std::string& model_type,
                                                   const std::string& where) {
  for (const auto* i : interchanges())
    if (i->hf_model_type() == model_type) return *i;
  fail(where + ": model_type '" + model_type + "' is not an architecture shardlm imports (" +
       known(&FamilyInterchange::hf_model_type) + ")");
}

namespace {
const nlohmann::json* present(const nlohmann::json& c, const char* key) {
  auto it = c.find(key);
  return it == c.end() || it->is_null() ? nullptr : &*it;
}
[[noreturn]] void wrong_type(const std::string& where, const char* key, const char* type) {
  fail(where + ": " + key + " must be " + type);
}
}  // namespace

int64_t hf_int(const nlohmann::json& c, const char* key, const std::string& where) {
  const nlohmann::json* v = present(c, key);
  if (!v) fail(where + ": " + key + " is missing");
  if (!v->is_number_integer()) wrong_type(where, key, "an integer");
  return v->get<int64_t>();
}

int64_t hf_int(const nlohmann::json& c, const char* key, int64_t fallback,
               const std::string& where) {
  return present(c, key) ? hf_int(c, key, where) : fallback;
}

double hf_number(const nlohmann::json& c, const char* key, double fallback,
                 const std::string& where) {
  const nlohmann::json* v = present(c, key);
  if (!v) return fallback;
  if (!v->is_number()) wrong_type(where, key, "a number");
  return v->get<double>();
}

bool hf_bool(const nlohmann::json& c, const char* key, bool fallback, const std::string& where) {
  const nlohmann::json* v = present(c, key);
  if (!v) return fallback;
  if (!v->is_boolean()) wrong_type(where, key, "true or false");
  return v->get<bool>();
}

std::string hf_string(const nlohmann::json& c, const char* key, const std::string& fallback,
                      const std::string& where) {
  const nlohmann::json* v = present(c, key);
  if (!v) return fallback;
  if (!v->is_string()) wrong_type(where, key, "a string");
  return v->get<std::string>();
}

void hf_require(bool ok, const std::string& where, const char* key, const std::string& why) {
  if (!ok) fail(where + ": " + key + " " + why + " (shardlm's model does not implement it)");
}

nlohmann::ordered_json hf_config_begin(const std::string& architecture,
                                       const std::string& model_type, const ModelConfig& cfg) {
  nlohmann::ordered_json j;
  j["architectures"] = {architecture};
  j["model_type"] = model_type;
  j["vocab_size"] = cfg.vocab_size;
  return j;
}

void hf_config_end(nlohmann::ordered_json& j, bool tie_word_embeddings, const SpecialIds& ids) {
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["use_cache"] = true;
  const auto id = [](int v) { return v >= 0 ? nlohmann::ordered_json(v) : nullptr; };
  j["bos_token_id"] = id(ids.bos);  // null: the tokenizer has none
  j["eos_token_id"] = id(ids.eos);
  if (ids.pad >= 0) j["pad_token_id"] = ids.pad;
}

ExternalPiece whole_piece(const std::vector<int64_t>& shape) {
  return {std::vector<int64_t>(shape.size(), 0), shape};
}

ExternalPiece row_piece(const std::vector<int64_t>& shape, int64_t row0, int64_t rows) {
  ExternalPiece p = whole_piece(shape);
  p.offset[0] = row0;
  p.count[0] = rows;
  return p;
}

ExternalTensor same_tensor(std::string name, std::string source, std::vector<int64_t> shape) {
  return {std::move(name), shape, std::move(source), {whole_piece(shape)}};
}

ExternalTensor vocab_rows(std::string name, std::string source, const ModelConfig& cfg) {
  const std::vector<int64_t> full = {cfg.padded_vocab(), cfg.n_embd};
  return {std::move(name),
          {cfg.vocab_size, cfg.n_embd},
          std::move(source),
          {row_piece(full, 0, cfg.vocab_size)}};
}

}  // namespace shardlm
