#include "convert/hf_export.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "convert/checkpoint_source.h"
#include "convert/external_tensor.h"
#include "convert/hf_tokenizer.h"
#include "convert/safetensors.h"
#include "core/error.h"
#include "core/fs.h"
#include "model/config.h"
#include "model/interchange.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

const char* torch_dtype(DType d) {
  return d == DType::BF16 ? "bfloat16" : d == DType::F16 ? "float16" : "float32";
}

// Consecutive tensors into files of at most max_bytes each (a bigger tensor gets its own).
std::vector<std::vector<ExternalTensor>> shard(const std::vector<ExternalTensor>& tensors,
                                               DType dtype, uint64_t max_bytes) {
  std::vector<std::vector<ExternalTensor>> files(1);
  uint64_t bytes = 0;
  for (const ExternalTensor& t : tensors) {
    const uint64_t n = static_cast<uint64_t>(external_numel(t)) * dtype_size(dtype);
    if (!files.back().empty() && bytes + n > max_bytes) {
      files.emplace_back();
      bytes = 0;
    }
    files.back().push_back(t);
    bytes += n;
  }
  return files;
}

std::string shard_name(size_t i, size_t n) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return n == 1 ? "model.safetensors" : name;
}

uint64_t write_shard(CheckpointReader& reader, const std::vector<ExternalTensor>& tensors,
                     DType dtype, const fs::path& path) {
  std::vector<SafetensorsEntry> entries;
  for (const ExternalTensor& t : tensors) entries.push_back({t.name, dtype, t.shape});
  SafetensorsWriter writer(path, std::move(entries), {{"format", "pt"}});
  std::vector<uint8_t> bytes;
  for (const ExternalTensor& t : tensors)
    read_external(reader, t, [&](const float* values, int64_t n) {
      bytes.resize(static_cast<size_t>(n) * dtype_size(dtype));
      convert_from_float(values, dtype, bytes.data(), static_cast<size_t>(n));
      writer.append(bytes.data(), bytes.size());
    });
  writer.finish();
  return writer.file_size();
}

}  // namespace

void require_empty_dir(const fs::path& dir, const char* what) {
  if (fs::exists(dir) && (!fs::is_directory(dir) || !fs::is_empty(dir)))
    fail(std::string(what) + " " + dir.string() +
         " already exists and is not an empty directory; give a new one");
}

HfExportReport export_hf(const fs::path& checkpoint, const fs::path& out_dir,
                         const HfExportOptions& options) {
  CheckpointReader reader(checkpoint);
  const ModelConfig cfg = checkpoint_model_config(reader);
  const FamilyInterchange& mapping = family_interchange(cfg.family);
  const std::optional<Tokenizer> tok = checkpoint_tokenizer(reader, cfg);
  require_empty_dir(out_dir, "OUT_DIR");
  fs::create_directories(out_dir);

  HfExportReport report;
  const std::vector<ExternalTensor> tensors = mapping.hf_tensors(cfg);
  const auto files = shard(tensors, options.dtype, options.max_shard_bytes);
  nlohmann::ordered_json weight_map;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string name = shard_name(i, files.size());
    report.bytes += write_shard(reader, files[i], options.dtype, out_dir / name);
    for (const ExternalTensor& t : files[i]) weight_map[t.name] = name;
  }
  report.files = static_cast<int>(files.size());
  report.tensors = static_cast<int>(tensors.size());
  if (files.size() > 1) {
    uint64_t total = 0;
    for (const ExternalTensor& t : tensors)
      total += static_cast<uint64_t>(external_numel(t)) * dtype_size(options.dtype);
    const nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                          {"weight_map", weight_map}};
    write_file_atomic(out_dir / "model.safetensors.index.json", index.dump(2));
  }

  const SpecialIds ids = tok ? special_ids(*tok) : SpecialIds{};
  nlohmann::ordered_json config = mapping.hf_config(cfg, ids);
  config["torch_dtype"] = torch_dtype(options.dtype);
  write_file_atomic(out_dir / "config.json", config.dump(2));
  nlohmann::ordered_json generation = {{"_from_model_config", true}};
  if (ids.bos >= 0) generation["bos_token_id"] = ids.bos;
  if (ids.eos >= 0) generation["eos_token_id"] = ids.eos;
  if (ids.pad >= 0) generation["pad_token_id"] = ids.pad;
  write_file_atomic(out_dir / "generation_config.json", generation.dump(2));
  if (tok) write_hf_tokenizer(*tok, cfg.max_seq_len, out_dir);
  report.tokenizer = tok.has_value();
  return report;
}

}  // namespace shardlm
