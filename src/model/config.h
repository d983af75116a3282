// Model hyper-parameters and the named presets. GPT-2 family now; `family` leaves room for
// Llama (RMSNorm, SwiGLU, RoPE, GQA, untied embeddings), which comes next.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

enum class ModelFamily { GPT2 };

struct ModelConfig {
  ModelFamily family = ModelFamily::GPT2;
  int n_layer = 0;
  int n_head = 0;
  int n_embd = 0;
  int vocab_size = 0;   // real vocabulary (tokenizer size)
  int max_seq_len = 0;  // rows of the learned position embedding
  // The vocabulary rounded up (for GEMM speed and so that it divides tp). Padded ids never get
  // probability mass or gradient; 0 means "derive from vocab_size" (see padded_vocab()).
  int vocab_pad_multiple = 128;

  int head_dim() const { return n_embd / n_head; }
  int padded_vocab() const;
  // Throws shardlm::Error naming the offending field.
  void validate() const;
  // Parameter count (real vocab, tied embedding counted once).
  int64_t num_parameters() const;
  bool operator==(const ModelConfig&) const = default;
};

// The [model] section of an INI text, exactly:
//   [model]\nn_layer=..\nn_head=..\nn_embd=..\nvocab_size=..\nmax_seq_len=..\nvocab_pad_multiple=..\n
// (run_config.ini, checkpoint configs). Parsing reads only the [model] section; unknown or
// missing keys there are errors naming the key. The result is validated.
std::string model_config_to_ini(const ModelConfig& cfg);
ModelConfig model_config_from_ini(const std::string& ini_text);
// "n_layer: 6 -> 8, n_embd: 384 -> 512" (empty when equal).
std::string model_config_diff(const ModelConfig& from, const ModelConfig& to);

// Named presets: tiny, mini, gpt2, gpt2-medium, gpt2-large, gpt2-xl. Throws on an unknown name
// (the message lists the known ones).
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

}  // namespace shardlm
