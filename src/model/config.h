// Model hyper-parameters, their [model] INI form (run configs and checkpoints) and the named
// presets of every family. What the fields mean for the computation is the family's business
// (model/family.h); `family` names it ("gpt2").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

struct ModelConfig {
  std::string family = "gpt2";
  int n_layer = 0;
  int n_head = 0;
  int n_embd = 0;
  int vocab_size = 0;   // real vocabulary (tokenizer size)
  int max_seq_len = 0;  // longest sequence (GPT-2: rows of the learned position embedding)
  // The vocabulary is rounded up to a multiple of this (GEMM speed, and so that it divides
  // tp). Padded ids never get probability mass or gradient. Must be > 0.
  int vocab_pad_multiple = 128;
  // Fields only some families use (Llama); at their defaults they are not written to the
  // [model] section, and a family that does not use one refuses a non-default value.
  int n_kv_head = 0;            // key/value heads (grouped-query attention); 0: n_head
  int intermediate_size = 0;    // MLP hidden width (SwiGLU)
  double rope_theta = 10000.0;  // RoPE base
  double norm_eps = 1e-5;       // RMSNorm epsilon
  int tie_embeddings = 0;       // 1: the LM head is the input embedding
  // Llama 3.1's RoPE frequency scaling (transformers' rope_scaling with rope_type "llama3"):
  // "" is none; "llama3" needs all four fields below (0 = unset).
  std::string rope_scaling;
  double rope_scaling_factor = 0;            // long wavelengths are divided by this
  double rope_scaling_low_freq_factor = 0;   // wavelengths above orig/low: fully scaled
  double rope_scaling_high_freq_factor = 0;  // wavelengths below orig/high: unscaled
  int rope_scaling_original_max_position_embeddings = 0;  // the context it was trained at

  int head_dim() const { return n_embd / n_head; }
  int kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  int padded_vocab() const;
  // Throws shardlm::Error naming the offending field (the family's own checks included).
  void validate() const;
  // Parameter count (real vocabulary; a tied embedding counted once), by the family's rule.
  int64_t num_parameters() const;
  bool operator==(const ModelConfig&) const = default;
};

// The [model] section of an INI text, exactly:
//   [model]\nfamily=..\nn_layer=..\nn_head=..\nn_embd=..\nvocab_size=..\nmax_seq_len=..\n
//   vocab_pad_multiple=..\n
// then each optional field (n_kv_head, intermediate_size, tie_embeddings,
// rope_scaling_original_max_position_embeddings, rope_theta, norm_eps, rope_scaling_factor,
// rope_scaling_low_freq_factor, rope_scaling_high_freq_factor, rope_scaling) that differs from
// its default, as key=value (doubles round-trip exactly).
// (run_config.ini, checkpoint configs). Parsing reads only the [model] section; unknown keys,
// and missing keys other than the optional ones, are errors naming the key; `family` defaults
// to gpt2 (checkpoints written before it existed). The result is validated.
std::string model_config_to_ini(const ModelConfig& cfg);
ModelConfig model_config_from_ini(const std::string& ini_text);
// "n_layer: 6 -> 8, n_embd: 384 -> 512" (empty when equal).
std::string model_config_diff(const ModelConfig& from, const ModelConfig& to);

// Named presets of every family (GPT-2: tiny, mini, gpt2, gpt2-medium, gpt2-large, gpt2-xl).
// Throws on an unknown name (the message lists the known ones).
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();
// What `--model` names (shardlm train and plan): the [model] section of `arg` when it is a
// file (a run's run_config.ini, `--print-config` output, or just that section), else the
// preset `arg`. Throws naming the file or the preset.
ModelConfig model_preset_or_file(const std::string& arg);

}  // namespace shardlm
