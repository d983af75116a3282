// How a family's tensors and config appear in other engines' files: Hugging Face transformers
// (config.json + safetensors) and llama.cpp (GGUF). Each family brings its own mapping
// (model/<family>/interchange.cpp); src/convert/ streams tensors through it without knowing a
// family. docs/conversion.md has the tables.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "model/config.h"

namespace shardlm {

// A rectangle of a shardlm tensor.
struct ExternalPiece {
  std::vector<int64_t> offset, count;
};

enum class ExternalLayout {
  kSame,        // the pieces' elements, concatenated row-major, are the external tensor
  kTransposed,  // the external 2-D [a, b] is the transpose of the pieces' [b, a] (HF Conv1D)
  // Rows come in heads of head_dim; within a head, external row 2j+i is row i*head_dim/2+j
  // of the pieces: rotate-half RoPE pairs (j, j+hd/2) become llama.cpp's adjacent pairs.
  kRopeInterleaved,
};

struct ExternalTensor {
  std::string name;            // e.g. "transformer.h.0.attn.c_attn.weight"
  std::vector<int64_t> shape;  // row-major, as the external file stores it
  std::string source;          // the shardlm tensor it comes from
  std::vector<ExternalPiece> pieces;
  ExternalLayout layout = ExternalLayout::kSame;
  int head_dim = 0;  // kRopeInterleaved
};

// A tensor an engine needs that no checkpoint holds: computed from the config (llama.cpp's
// rope_freqs for Llama 3.1's rope scaling), written f32.
struct ComputedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major
};

// The tokenizer's special ids, as config.json and GGUF name them (-1: none).
struct SpecialIds {
  int bos = -1, eos = -1, pad = -1, unk = -1;
};

// A GGUF metadata value before typing: integers are written as u32, doubles as f32.
using InterchangeValue = std::variant<int64_t, double, std::string>;

class FamilyInterchange {
 public:
  virtual ~FamilyInterchange() = default;
  virtual std::string family() const = 0;  // the [model] family key

  // Hugging Face: config.json's model_type and architecture, the config both ways, and the
  // state-dict tensors (unpadded vocabulary; a tied head is not stored).
  virtual std::string hf_model_type() const = 0;  // "gpt2"
  virtual nlohmann::ordered_json hf_config(const ModelConfig& cfg, const SpecialIds& ids) const = 0;
  // Throws naming `where` and the key for a missing key or a setting shardlm cannot run.
  virtual ModelConfig config_from_hf(const nlohmann::json& config,
                                     const std::string& where) const = 0;
  virtual std::vector<ExternalTensor> hf_tensors(const ModelConfig& cfg) const = 0;
  // Tensors a Hugging Face file may hold that carry no weights shardlm needs (buffers, a tied
  // head's copy).
  virtual bool hf_ignorable(const std::string& name, const ModelConfig& cfg) const = 0;

  // GGUF: general.architecture, the "<arch>.*" hyper-parameters (keys without the prefix) and
  // the tensors under llama.cpp's names.
  virtual std::string gguf_architecture() const = 0;
  virtual std::vector<std::pair<std::string, InterchangeValue>> gguf_hparams(
      const ModelConfig& cfg) const = 0;
  virtual std::vector<ExternalTensor> gguf_tensors(const ModelConfig& cfg) const = 0;
  // Tensors written before gguf_tensors that come from the config alone.
  virtual std::vector<ComputedTensor> gguf_computed_tensors(const ModelConfig& cfg) const {
    return {};
  }
};

// The mapping of `family`; throws listing the families that have one.
const FamilyInterchange& family_interchange(const std::string& family);
// The mapping whose hf_model_type() is `model_type` (config.json's); throws naming `where` and
// the supported model types.
const FamilyInterchange& family_interchange_for_hf(const std::string& model_type,
                                                   const std::string& where);

// config.json values for config_from_hf: throw naming `where` and the key when it is missing
// (without a fallback) or not of the type.
int64_t hf_int(const nlohmann::json& config, const char* key, const std::string& where);
int64_t hf_int(const nlohmann::json& config, const char* key, int64_t fallback,
               const std::string& where);
double hf_number(const nlohmann::json& config, const char* key, double fallback,
                 const std::string& where);
bool hf_bool(const nlohmann::json& config, const char* key, bool fallback,
             const std::string& where);
std::string hf_string(const nlohmann::json& config, const char* key, const std::string& fallback,
                      const std::string& where);
// Refuses, naming where and key, a setting shardlm's model does not implement.
void hf_require(bool ok, const std::string& where, const char* key, const std::string& why);

// config.json's first keys, which every family writes: architectures ([architecture]),
// model_type and vocab_size. The family adds its own after them, then hf_config_end.
nlohmann::ordered_json hf_config_begin(const std::string& architecture,
                                       const std::string& model_type, const ModelConfig& cfg);
// Its last keys: tie_word_embeddings, use_cache (true) and the special ids (bos, eos, and pad
// when the tokenizer has one).
void hf_config_end(nlohmann::ordered_json& config, bool tie_word_embeddings, const SpecialIds& ids);

// A piece covering the whole of a tensor of `shape`.
ExternalPiece whole_piece(const std::vector<int64_t>& shape);
// Rows [row0, row0 + rows) of a tensor of `shape` (dimension 0).
ExternalPiece row_piece(const std::vector<int64_t>& shape, int64_t row0, int64_t rows);
// The external tensor `name` that is the whole shardlm tensor `source`, of the same `shape`.
ExternalTensor same_tensor(std::string name, std::string source, std::vector<int64_t> shape);
// The external [vocab_size, C] tensor `name`: the real vocabulary rows of the padded [Vp, C]
// table `source` (an embedding or a head).
ExternalTensor vocab_rows(std::string name, std::string source, const ModelConfig& cfg);

}  // namespace shardlm
