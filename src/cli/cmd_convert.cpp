// `shardlm convert`: checkpoints to and from inference engines (src/convert/,
// docs/conversion.md):
//   shardlm convert --to hf CKPT OUT_DIR [--dtype f32|bf16|f16] [--max-shard-mb N]
//   shardlm convert --to gguf CKPT OUT.gguf [--dtype f32|f16|bf16|q8_0]
//   shardlm convert --from hf HF_DIR CKPT_DIR
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "cli/cli_options.h"
#include "cli/commands.h"
#include "convert/gguf_export.h"
#include "convert/hf_export.h"
#include "convert/hf_import.h"
#include "core/error.h"
#include "core/parse.h"

namespace shardlm::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "shardlm convert --to hf CKPT OUT_DIR [--dtype f32|bf16|f16] [--max-shard-size 5GB]\n"
    "       shardlm convert --to gguf CKPT OUT.gguf [--dtype f32|f16|bf16|q8_0]\n"
    "       shardlm convert --from hf HF_DIR CKPT_DIR\n\n"
    "--to hf: a Hugging Face directory (GPT2LMHeadModel or LlamaForCausalLM: config.json,\n"
    "safetensors, generation_config.json, tokenizer). --to gguf: one GGUF v3 file for llama.cpp.\n"
    "--from hf: a Hugging Face GPT-2 or Llama directory becomes a checkpoint (step 0) under\n"
    "CKPT_DIR, for `shardlm train --init-from` or `shardlm generate`; its tokenizer.model, or a\n"
    "byte-level BPE tokenizer.json, is also written to CKPT_DIR for `shardlm data prepare`.\n"
    "CKPT: a checkpoint directory, a run directory or a checkpoint root (its newest checkpoint).";

DType hf_dtype(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  if (name == "f16") return DType::F16;
  throw UsageError("--dtype '" + name + "': --to hf writes f32, bf16 or f16");
}

GgufType gguf_dtype(const std::string& name) {
  if (name == "f32") return GgufType::kF32;
  if (name == "f16") return GgufType::kF16;
  if (name == "bf16") return GgufType::kBF16;
  if (name == "q8_0") return GgufType::kQ8_0;
  throw UsageError("--dtype '" + name + "': --to gguf writes f32, f16, bf16 or q8_0");
}

// "5GB", "200MB", "100KB" or bytes; decimal units, as transformers' max_shard_size.
uint64_t shard_size(const std::string& text) {
  static const std::pair<const char*, uint64_t> units[] = {
      {"GB", 1'000'000'000}, {"MB", 1'000'000}, {"KB", 1'000}, {"B", 1}};
  for (const auto& [suffix, scale] : units) {
    const size_t n = std::string(suffix).size();
    if (text.size() > n && text.compare(text.size() - n, n, suffix) == 0)
      return parse_uint64("--max-shard-size", text.substr(0, text.size() - n)) * scale;
  }
  return parse_uint64("--max-shard-size", text);
}

int to_hf(const fs::path& ckpt, const fs::path& out, const std::string& dtype,
          const std::string& max_shard) {
  HfExportOptions options;
  options.dtype = hf_dtype(dtype);
  options.max_shard_bytes = shard_size(max_shard);
  if (options.max_shard_bytes == 0) throw UsageError("--max-shard-size must be > 0");
  const HfExportReport r = export_hf(ckpt, out, options);
  std::cout << "wrote " << out.string() << ": " << r.tensors << " tensors (" << dtype << ") in "
            << r.files << " safetensors file(s), " << r.bytes << " bytes"
            << (r.tokenizer ? ", tokenizer" : ", no tokenizer (the run had none)") << "\n";
  return kExitOk;
}

int to_gguf(const fs::path& ckpt, const fs::path& out, const std::string& dtype) {
  const GgufExportReport r = export_gguf(ckpt, out, gguf_dtype(dtype));
  std::cout << "wrote " << out.string() << ": " << r.tensors << " tensors (" << dtype << "), "
            << r.bytes << " bytes\n";
  return kExitOk;
}

int from_hf(const fs::path& hf_dir, const fs::path& root) {
  const HfImportReport r = import_hf(hf_dir, root);
  std::cout << "wrote " << r.checkpoint.string() << ": " << r.tensors << " tensors";
  if (!r.tokenizer.empty())
    std::cout << ", its tokenizer (also " << (root / r.tokenizer).string()
              << ", for shardlm data prepare --tokenizer)\n";
  else if (!r.tokenizer_note.empty())
    std::cout << ", no tokenizer: " << r.tokenizer_note << "\n";
  else
    std::cout << ", no tokenizer (no tokenizer.model or tokenizer.json found)\n";
  return kExitOk;
}

int cmd_convert(const std::vector<std::string>& args) {
  std::string to, from, dtype, source, dest;
  std::string max_shard = "5GB";
  po::options_description visible("Options"), hidden;
  visible.add_options()("to", po::value(&to), "export format: hf or gguf")("from", po::value(&from),
                                                                           "import format: hf")(
      "dtype", po::value(&dtype),
      "stored type (default f32): f32, bf16, f16 (hf); f32, f16, "
      "bf16, q8_0 (gguf)")(
      "max-shard-size", po::value(&max_shard)->default_value(max_shard),
      "--to hf: safetensors files of at most this size (bytes, or KB/MB/GB: powers of 1000); "
      "above it the weights are sharded with model.safetensors.index.json");
  hidden.add_options()("source", po::value(&source), "")("dest", po::value(&dest), "");
  po::positional_options_description positional;
  positional.add("source", 1).add("dest", 1);
  po::variables_map vm;
  if (auto rc = parse_options(kUsage, visible, hidden, positional, args, vm)) return *rc;
  if (to.empty() == from.empty()) throw UsageError("give exactly one of --to and --from");
  if (source.empty() || dest.empty())
    throw UsageError("needs a source and a destination path (see shardlm convert --help)");
  if (dtype.empty()) dtype = "f32";
  if (!from.empty()) {
    if (from != "hf") throw UsageError("--from '" + from + "': shardlm imports hf");
    if (vm.count("dtype")) throw UsageError("--dtype is for --to (imports are stored f32)");
    return from_hf(source, dest);
  }
  const fs::path ckpt = resolve_checkpoint(source);
  if (to == "hf") return to_hf(ckpt, dest, dtype, max_shard);
  if (to == "gguf") return to_gguf(ckpt, dest, dtype);
  throw UsageError("--to '" + to + "': shardlm exports hf or gguf");
}

const CommandRegistrar reg("convert", "export to Hugging Face / GGUF, import from Hugging Face",
                           cmd_convert);

}  // namespace
}  // namespace shardlm::cli
