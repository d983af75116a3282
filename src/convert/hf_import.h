// `shardlm convert --from hf`: a Hugging Face GPT-2 or Llama directory (config.json and
// model.safetensors, or shards listed in model.safetensors.index.json) becomes a shardlm
// checkpoint (step 0, parameters only, stored f32) under CKPT_DIR, loadable into any layout
// (`shardlm train --init-from`, `shardlm generate`). The directory's tokenizer goes into the
// checkpoint and, as a file for `shardlm data prepare`, next to it (CKPT_DIR/tokenizer.model or
// CKPT_DIR/tokenizer.json): a SentencePiece tokenizer.model as is, else a tokenizer.json that is
// byte-level BPE of GPT-2's kind (data/tokenizer_json.h); another tokenizer.json is left out,
// with the reason in the report. The tensors stream from the safetensors files into the
// checkpoint's rank file block by block (convert/import_slices.h): memory stays near one block,
// plus one whole tensor for those whose layout moves elements, not the model.
#pragma once

#include <filesystem>

namespace shardlm {

struct HfImportReport {
  std::filesystem::path checkpoint;  // the committed step_00000000 directory
  int tensors = 0;
  std::string tokenizer;       // the file carried ("tokenizer.model", "tokenizer.json") or ""
  std::string tokenizer_note;  // why HF_DIR's tokenizer.json was not carried, or ""
};

HfImportReport import_hf(const std::filesystem::path& hf_dir, const std::filesystem::path& root);

}  // namespace shardlm
