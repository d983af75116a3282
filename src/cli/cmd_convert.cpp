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

namespace shardlm::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "shardlm convert --to hf CKPT OUT_DIR [--dtype f32|bf16|f16] [--max-shard-mb N]\n"
    "       shardlm convert --to gguf CKPT OUT.gguf [--dtype f32|f16|bf16|q8_0]\n"
    "       shardlm convert --from hf HF_DIR CKPT_DIR\n\n"
    "--to hf: a Hugging Face directory (GPT2LMHeadModel or LlamaForCausalLM: config.json,\n"
    "safetensors, generation_config.json, tokenizer). --to gguf: one GGUF v3 file for llama.cpp.\n"
    "--from hf: a Hugging Face GPT-2 or Llama directory becomes a checkpoint (step 0) under\n"
    "CKPT_DIR, for `shardlm train --init-from` or `shardlm generate`.\n"
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

int to_hf(const fs::path& ckpt, const fs::path& out, const std::string& dtype, int64_t shard_mb) {
  if (shard_mb <= 0) throw UsageError("--max-shard-mb must be > 0");
  HfExportOptions options;
  options.dtype = hf_dtype(dtype);
  options.max_shard_bytes = static_cast<uint64_t>(shard_mb) * 1000 * 1000;
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
  std::cout << "wrote " << r.checkpoint.string() << ": " << r.tensors << " tensors"
            << (r.tokenizer ? ", tokenizer.model" : ", no tokenizer (no tokenizer.model found)")
            << "\n";
  return kExitOk;
}

int cmd_convert(const std::vector<std::string>& args) {
  std::string to, from, dtype, source, dest;
  int64_t shard_mb = 5000;
  po::options_description visible("Options"), hidden;
  visible.add_options()("to", po::value(&to), "export format: hf or gguf")(
      "from", po::value(&from), "import format: hf")(
      "dtype", po::value(&dtype), "stored type (default f32): f32, bf16, f16 (hf); f32, f16, "
                                  "bf16, q8_0 (gguf)")(
      "max-shard-mb", po::value(&shard_mb)->default_value(shard_mb),
      "--to hf: safetensors files of at most this many MB (10^6 bytes); above it the weights "
      "are sharded with model.safetensors.index.json");
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
  if (to == "hf") return to_hf(ckpt, dest, dtype, shard_mb);
  if (to == "gguf") return to_gguf(ckpt, dest, dtype);
  throw UsageError("--to '" + to + "': shardlm exports hf or gguf");
}

const CommandRegistrar reg("convert", "export to Hugging Face / GGUF, import from Hugging Face",
                           cmd_convert);

}  // namespace
}  // namespace shardlm::cli
