#include "convert/gguf_export.h"

#include "convert/checkpoint_source.h"
#include "convert/external_tensor.h"
#include "core/error.h"
#include "model/interchange.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

// llama.cpp's llama_token_type (gguf-py TokenType).
int32_t token_type(Tokenizer::PieceType t) {
  switch (t) {
    case Tokenizer::PieceType::kNormal:
      return 1;
    case Tokenizer::PieceType::kUnknown:
      return 2;
    case Tokenizer::PieceType::kControl:
      return 3;
    case Tokenizer::PieceType::kUnused:
      return 5;
    case Tokenizer::PieceType::kByte:
      return 6;
    case Tokenizer::PieceType::kUserDefined:
      return 4;
  }
  return 1;
}

// llama_ftype of a file whose matrices are `type` (gguf-py LlamaFileType).
uint32_t file_type(GgufType type) {
  switch (type) {
    case GgufType::kF32:
      return 0;
    case GgufType::kF16:
      return 1;
    case GgufType::kQ8_0:
      return 7;
    case GgufType::kBF16:
      return 32;
  }
  return 0;
}

// The vocabulary: SentencePiece as llama.cpp's "llama" tokenizer (tokens, scores, types);
// byte-level BPE as its "gpt2" tokenizer with GPT-2's pre-tokenizer (tokens, types, merges).
void add_vocabulary(GgufMetadata& md, const Tokenizer& tok) {
  const bool bpe = tok.kind() == TokenizerKind::kByteLevelBpe;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int id = 0; id < tok.vocab_size(); ++id) {
    tokens.push_back(tok.piece(id));
    scores.push_back(tok.piece_score(id));
    types.push_back(token_type(tok.piece_type(id)));
  }
  md.emplace_back("tokenizer.ggml.model", std::string(bpe ? "gpt2" : "llama"));
  if (bpe) md.emplace_back("tokenizer.ggml.pre", std::string("gpt-2"));
  md.emplace_back("tokenizer.ggml.tokens", std::move(tokens));
  if (!bpe) md.emplace_back("tokenizer.ggml.scores", std::move(scores));
  md.emplace_back("tokenizer.ggml.token_type", std::move(types));
  if (bpe) {
    std::vector<std::string> merges;
    for (const auto& [a, b] : tok.merges()) merges.push_back(a + " " + b);
    md.emplace_back("tokenizer.ggml.merges", std::move(merges));
  }
}

void add_tokenizer(GgufMetadata& md, const Tokenizer& tok) {
  add_vocabulary(md, tok);
  auto id = [&](const char* key, int v) {
    if (v >= 0) md.emplace_back(key, static_cast<uint32_t>(v));
  };
  id("tokenizer.ggml.bos_token_id", tok.bos_id());
  id("tokenizer.ggml.eos_token_id", tok.eos_id());
  id("tokenizer.ggml.unknown_token_id", tok.unk_id());
  id("tokenizer.ggml.padding_token_id", tok.pad_id());
  // shardlm's tokenizers add nothing: no BOS/EOS, no leading space.
  md.emplace_back("tokenizer.ggml.add_bos_token", false);
  md.emplace_back("tokenizer.ggml.add_eos_token", false);
  md.emplace_back("tokenizer.ggml.add_space_prefix", false);
}

GgufType tensor_type(const ExternalTensor& t, GgufType wanted) {
  if (t.shape.size() < 2) return GgufType::kF32;
  if (wanted == GgufType::kQ8_0 && t.shape.back() % kQ8BlockElements != 0) return GgufType::kF16;
  return wanted;
}

}  // namespace

GgufExportReport export_gguf(const fs::path& checkpoint, const fs::path& out_file, GgufType type) {
  CheckpointReader reader(checkpoint);
  const ModelConfig cfg = checkpoint_model_config(reader);
  const FamilyInterchange& mapping = family_interchange(cfg.family);
  const std::optional<Tokenizer> tok = checkpoint_tokenizer(reader, cfg);
  if (!tok)
    fail("checkpoint " + checkpoint.string() +
         " carries no tokenizer, and a GGUF file needs its vocabulary: train on a dataset "
         "prepared with `shardlm data prepare`");
  const std::string arch = mapping.gguf_architecture();
  GgufMetadata md = {
      {"general.architecture", arch},
      {"general.name", "shardlm " + cfg.family + " step " + std::to_string(reader.step())},
      {"general.file_type", file_type(type)}};
  for (const auto& [key, value] : mapping.gguf_hparams(cfg)) {
    const std::string k = arch + "." + key;
    if (const auto* i = std::get_if<int64_t>(&value))
      md.emplace_back(k, static_cast<uint32_t>(*i));
    else if (const auto* d = std::get_if<double>(&value))
      md.emplace_back(k, static_cast<float>(*d));
    else
      md.emplace_back(k, std::get<std::string>(value));
  }
  add_tokenizer(md, *tok);

  const std::vector<ComputedTensor> computed = mapping.gguf_computed_tensors(cfg);
  const std::vector<ExternalTensor> tensors = mapping.gguf_tensors(cfg);
  std::vector<GgufTensorInfo> infos;
  for (const ComputedTensor& t : computed) infos.push_back({t.name, t.shape, GgufType::kF32});
  for (const ExternalTensor& t : tensors) infos.push_back({t.name, t.shape, tensor_type(t, type)});
  GgufWriter writer(out_file, md, infos);
  for (const ComputedTensor& t : computed)
    writer.append(t.values.data(), static_cast<int64_t>(t.values.size()));
  for (const ExternalTensor& t : tensors)
    read_external(reader, t, [&](const float* values, int64_t n) { writer.append(values, n); });
  writer.finish();
  return {static_cast<int>(infos.size()), static_cast<uint64_t>(fs::file_size(out_file))};
}

}  // namespace shardlm
