#include "convert/hf_import.h"

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "checkpoint/checkpoint.h"
#include "checkpoint/rect.h"  // shape_string
#include "convert/import_slices.h"
#include "convert/safetensors.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/tokenizer.h"
#include "model/family.h"
#include "model/interchange.h"
#include "parallel/self_comm.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& path) {
  if (!fs::exists(path)) fail(path.string() + " is missing");
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(path.string() + ": not a JSON object");
  return j;
}

// Every tensor of the directory's safetensors files, by name.
class HfWeights {
 public:
  explicit HfWeights(const fs::path& dir) {
    const fs::path index = dir / "model.safetensors.index.json";
    std::set<std::string> files;
    if (fs::exists(index)) {
      const nlohmann::json j = read_json(index);
      if (!j.contains("weight_map") || !j["weight_map"].is_object())
        fail(index.string() + ": weight_map is missing or not an object");
      for (const auto& f : j["weight_map"]) {
        if (!f.is_string())
          fail(index.string() + ": weight_map holds a value that is not a file name");
        files.insert(f.get<std::string>());
      }
    } else if (fs::exists(dir / "model.safetensors")) {
      files.insert("model.safetensors");
    } else {
      fail(dir.string() + " has neither model.safetensors nor model.safetensors.index.json");
    }
    for (const std::string& f : files) {
      readers_.push_back(std::make_unique<SafetensorsReader>(dir / f));
      for (const SafetensorsEntry& e : readers_.back()->entries())
        entries_[e.name] = {readers_.back().get(), &e};
    }
  }

  // The tensor under `name`, or (files saved from a base model) without its
  // "transformer." / "model." prefix; nullopt when absent.
  struct Found {
    const SafetensorsReader* reader;
    const SafetensorsEntry* entry;
  };
  std::optional<Found> find(const std::string& name) {
    for (const std::string& n : {name, strip_prefix(name)}) {
      auto it = entries_.find(n);
      if (it != entries_.end()) {
        used_.insert(n);
        return it->second;
      }
    }
    return std::nullopt;
  }
  // Names that no lookup used.
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& [name, f] : entries_)
      if (!used_.count(name)) out.push_back(name);
    return out;
  }
  std::string where(const Found& f) const { return f.reader->path().string(); }

 private:
  static std::string strip_prefix(const std::string& name) {
    for (const char* p : {"transformer.", "model."})
      if (name.rfind(p, 0) == 0) return name.substr(std::string(p).size());
    return name;
  }
  std::vector<std::unique_ptr<SafetensorsReader>> readers_;
  std::map<std::string, Found> entries_;
  std::set<std::string> used_;
};

ModelConfig import_config(const fs::path& dir, const FamilyInterchange*& mapping) {
  const fs::path path = dir / "config.json";
  const nlohmann::json j = read_json(path);
  const std::string where = path.string();
  mapping = &family_interchange_for_hf(hf_string(j, "model_type", "", where), where);
  ModelConfig cfg = mapping->config_from_hf(j, where);
  try {
    cfg.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return cfg;
}

// HF_DIR's tokenizer.model, else its tokenizer.json if shardlm reads it (`note` says why not).
std::optional<Tokenizer> import_tokenizer(const fs::path& dir, const ModelConfig& cfg,
                                          std::string& note) {
  fs::path path = dir / "tokenizer.model";
  std::optional<Tokenizer> tok;
  if (fs::exists(path)) {
    tok = Tokenizer::from_file(path.string());
  } else if (path = dir / "tokenizer.json"; fs::exists(path)) {
    try {
      tok = Tokenizer::from_file(path.string());
    } catch (const Error& e) {
      note = e.what();
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  if (tok->vocab_size() != cfg.vocab_size)
    fail(path.string() + " has " + std::to_string(tok->vocab_size()) +
         " pieces but config.json's vocab_size is " + std::to_string(cfg.vocab_size) +
         ": they are not one model's");
  return tok;
}

}  // namespace

HfImportReport import_hf(const fs::path& hf_dir, const fs::path& root) {
  const FamilyInterchange* mapping = nullptr;
  const ModelConfig cfg = import_config(hf_dir, mapping);
  HfImportReport report;
  const std::optional<Tokenizer> tok = import_tokenizer(hf_dir, cfg, report.tokenizer_note);
  HfWeights weights(hf_dir);

  const TensorPlan plan = model_family(cfg.family).tensor_plan(cfg);
  auto spec_of = [&](const std::string& name) -> const TensorSpec& {
    for (const TensorSpec& s : plan)
      if (s.name == name) return s;
    fail("conversion mapping names '" + name + "', which the " + cfg.family + " plan lacks");
  };
  // Every tensor is found and checked before anything is written; the save then streams them.
  std::vector<SourcedSlice> slices;
  for (const ExternalTensor& t : mapping->hf_tensors(cfg)) {
    const auto found = weights.find(t.name);
    if (!found)
      fail(hf_dir.string() + ": tensor '" + t.name + "' is missing from its safetensors files");
    const SafetensorsEntry& e = *found->entry;
    if (e.shape != t.shape)
      fail(weights.where(*found) + ": tensor '" + e.name + "' has shape " + shape_string(e.shape) +
           " but config.json asks for " + shape_string(t.shape));
    add_streamed_slices(t, *found->reader, e, spec_of(t.source).shape, slices);
  }
  for (const std::string& name : weights.unused())
    if (!mapping->hf_ignorable(name, cfg))
      fail(hf_dir.string() + ": tensor '" + name + "' is not part of a " + cfg.family +
           " model shardlm runs (unexpected in its safetensors files)");
  for (const TensorSpec& s : plan) add_zero_slices(s.name, s.shape, slices);  // padded rows

  CheckpointInfo info;
  info.config_text = model_config_to_ini(cfg);
  if (tok) info.tokenizer_model.assign(tok->serialized().begin(), tok->serialized().end());
  info.metadata = {{"step", int64_t{0}},
                   {"samples_consumed", int64_t{0}},
                   {"layout.tp", int64_t{1}},
                   {"layout.pp", int64_t{1}},
                   {"layout.dp", int64_t{1}},
                   {"layout.zero", int64_t{0}},
                   {"imported_from", fs::absolute(hf_dir).string()}};
  SelfCommunicator self;
  report.checkpoint = save_sourced_checkpoint(self, root, 0, slices, info);
  report.tensors = static_cast<int>(plan.size());
  if (tok) {
    report.tokenizer = tok->file_name();
    tok->save((root / report.tokenizer).string());  // for `shardlm data prepare --tokenizer`
  }
  return report;
}

}  // namespace shardlm
