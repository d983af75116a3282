#include "model/config.h"

#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"
#include "model/family.h"

namespace shardlm {

int ModelConfig::padded_vocab() const {
  const int m = vocab_pad_multiple > 0 ? vocab_pad_multiple : 1;
  return (vocab_size + m - 1) / m * m;
}

void ModelConfig::validate() const {
  const ModelFamily& fam = model_family(family);  // throws naming unknown families
  auto positive = [](const char* field, int v) {
    if (v <= 0)
      fail(std::string("invalid model config: ") + field + " must be > 0, got " +
           std::to_string(v));
  };
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  positive("n_embd", n_embd);
  positive("vocab_size", vocab_size);
  positive("max_seq_len", max_seq_len);
  positive("vocab_pad_multiple", vocab_pad_multiple);
  if (n_embd % n_head != 0)
    fail("invalid model config: n_embd (" + std::to_string(n_embd) +
         ") must be divisible by n_head (" + std::to_string(n_head) + ")");
  fam.validate(*this);
}

int64_t ModelConfig::num_parameters() const {
  return model_family(family).num_parameters(*this);
}

namespace {
// The integer fields of the [model] section, in order (after `family`).
struct ModelField {
  const char* key;
  int ModelConfig::*member;
};
constexpr ModelField kModelFields[] = {
    {"n_layer", &ModelConfig::n_layer},
    {"n_head", &ModelConfig::n_head},
    {"n_embd", &ModelConfig::n_embd},
    {"vocab_size", &ModelConfig::vocab_size},
    {"max_seq_len", &ModelConfig::max_seq_len},
    {"vocab_pad_multiple", &ModelConfig::vocab_pad_multiple},
};

// The optional fields: written only when they differ from ModelConfig's defaults.
struct OptionalIntField {
  const char* key;
  int ModelConfig::*member;
};
constexpr OptionalIntField kOptionalInts[] = {
    {"n_kv_head", &ModelConfig::n_kv_head},
    {"intermediate_size", &ModelConfig::intermediate_size},
    {"tie_embeddings", &ModelConfig::tie_embeddings},
    {"rope_scaling_original_max_position_embeddings",
     &ModelConfig::rope_scaling_original_max_position_embeddings},
};
struct OptionalDoubleField {
  const char* key;
  double ModelConfig::*member;
};
constexpr OptionalDoubleField kOptionalDoubles[] = {
    {"rope_theta", &ModelConfig::rope_theta},
    {"norm_eps", &ModelConfig::norm_eps},
    {"rope_scaling_factor", &ModelConfig::rope_scaling_factor},
    {"rope_scaling_low_freq_factor", &ModelConfig::rope_scaling_low_freq_factor},
    {"rope_scaling_high_freq_factor", &ModelConfig::rope_scaling_high_freq_factor},
};
struct OptionalStringField {
  const char* key;
  std::string ModelConfig::*member;
};
constexpr OptionalStringField kOptionalStrings[] = {
    {"rope_scaling", &ModelConfig::rope_scaling},
};

std::string exact(double x) {
  std::ostringstream os;
  os << std::setprecision(17) << x;
  return os.str();
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// Sets an optional field from key=value; false when `key` is not one.
bool parse_optional_field(ModelConfig& cfg, const std::string& key, const std::string& value) {
  for (const auto& f : kOptionalInts) {
    if (key != f.key) continue;
    cfg.*f.member = parse_int("[model] section: " + key, value);
    return true;
  }
  for (const auto& f : kOptionalDoubles) {
    if (key != f.key) continue;
    cfg.*f.member = parse_double("[model] section: " + key, value);
    return true;
  }
  for (const auto& f : kOptionalStrings) {
    if (key != f.key) continue;
    cfg.*f.member = value;
    return true;
  }
  return false;
}

}  // namespace

std::string model_config_to_ini(const ModelConfig& cfg) {
  std::ostringstream os;
  os << "[model]\nfamily=" << cfg.family << "\n";
  for (const auto& f : kModelFields) os << f.key << "=" << cfg.*f.member << "\n";
  const ModelConfig defaults;
  for (const auto& f : kOptionalInts)
    if (cfg.*f.member != defaults.*f.member) os << f.key << "=" << cfg.*f.member << "\n";
  for (const auto& f : kOptionalDoubles)
    if (cfg.*f.member != defaults.*f.member) os << f.key << "=" << exact(cfg.*f.member) << "\n";
  for (const auto& f : kOptionalStrings)
    if (cfg.*f.member != defaults.*f.member) os << f.key << "=" << cfg.*f.member << "\n";
  return os.str();
}

ModelConfig model_config_from_ini(const std::string& ini_text) {
  ModelConfig cfg;
  std::map<std::string, bool> seen;
  std::istringstream in(ini_text);
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      section = trim(line.substr(1, line.find(']') - 1));
      continue;
    }
    if (section != "model") continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) fail("[model] section: expected key=value, got '" + line + "'");
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    seen[key] = true;
    if (key == "family") {
      cfg.family = value;
      continue;
    }
    if (parse_optional_field(cfg, key, value)) continue;
    const ModelField* field = nullptr;
    for (const auto& f : kModelFields)
      if (key == f.key) field = &f;
    if (!field) fail("[model] section: unknown key '" + key + "'");
    cfg.*field->member = parse_int("[model] section: " + key, value);
  }
  for (const auto& f : kModelFields)
    if (!seen[f.key]) fail(std::string("[model] section: missing key '") + f.key + "'");
  cfg.validate();
  return cfg;
}

std::string model_config_diff(const ModelConfig& from, const ModelConfig& to) {
  std::string diff;
  if (from.family != to.family) diff = "family: " + from.family + " -> " + to.family;
  auto add = [&](const char* key, const std::string& a, const std::string& b) {
    if (a != b) diff += (diff.empty() ? "" : ", ") + std::string(key) + ": " + a + " -> " + b;
  };
  for (const auto& f : kModelFields)
    add(f.key, std::to_string(from.*f.member), std::to_string(to.*f.member));
  for (const auto& f : kOptionalInts)
    add(f.key, std::to_string(from.*f.member), std::to_string(to.*f.member));
  for (const auto& f : kOptionalDoubles) add(f.key, exact(from.*f.member), exact(to.*f.member));
  for (const auto& f : kOptionalStrings) add(f.key, from.*f.member, to.*f.member);
  return diff;
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const ModelFamily* fam : model_families())
    for (const auto& [name, cfg] : fam->presets()) names.push_back(name);
  return names;
}

ModelConfig model_preset_or_file(const std::string& arg) {
  if (!std::filesystem::is_regular_file(arg)) return model_preset(arg);
  try {
    return model_config_from_ini(read_file(arg));
  } catch (const Error& e) {
    fail(arg + ": " + e.what());
  }
}

ModelConfig model_preset(const std::string& name) {
  for (const ModelFamily* fam : model_families())
    for (const auto& [preset, cfg] : fam->presets())
      if (preset == name) return cfg;
  std::string known;
  for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown model preset '" + name + "' (known: " + known + ")");
}

}  // namespace shardlm
