// Llama's names and layouts in Hugging Face and GGUF files. shardlm groups q/k/v per key/value
// head ([KV, g+2, hd, C]: g query heads, then k, then v); transformers stores q_proj [H*hd, C],
// k_proj and v_proj [KV*hd, C], which are KV pieces of it each. gate and up are the two halves
// of [2, F, C]. llama.cpp's llama rotates adjacent pairs, so its q and k rows are permuted per
// head (convert_hf_to_gguf.py's LlamaModel.permute).
#include "model/llama/interchange.h"

#include "core/error.h"
#include "model/llama/rope.h"

namespace shardlm {

namespace {

// Of qkv [KV, g+2, hd, C]: slot 0 (the g query heads of each group), g (k) or g+1 (v).
ExternalTensor qkv_part(std::string name, std::string source, const ModelConfig& c, int slot,
                        int heads_per_group) {
  const int64_t C = c.n_embd, hd = c.head_dim(), KV = c.kv_heads();
  ExternalTensor t{std::move(name), {KV * heads_per_group * hd, C}, std::move(source), {}};
  for (int64_t k = 0; k < KV; ++k)
    t.pieces.push_back({{k, slot, 0, 0}, {1, heads_per_group, hd, C}});
  return t;
}

ExternalTensor gate_up_part(std::string name, std::string source, const ModelConfig& c, int part) {
  const int64_t F = c.intermediate_size, C = c.n_embd;
  return {std::move(name), {F, C}, std::move(source), {{{part, 0, 0}, {1, F, C}}}};
}

ExternalTensor rope_rows(ExternalTensor t, const ModelConfig& c) {
  t.layout = ExternalLayout::kRopeInterleaved;
  t.head_dim = c.head_dim();
  return t;
}

class LlamaInterchange final : public FamilyInterchange {
 public:
  std::string family() const override { return "llama"; }
  std::string hf_model_type() const override { return "llama"; }

  nlohmann::ordered_json hf_config(const ModelConfig& c, const SpecialIds& ids) const override {
    nlohmann::ordered_json j = hf_config_begin("LlamaForCausalLM", "llama", c);
    j["hidden_size"] = c.n_embd;
    j["intermediate_size"] = c.intermediate_size;
    j["num_hidden_layers"] = c.n_layer;
    j["num_attention_heads"] = c.n_head;
    j["num_key_value_heads"] = c.kv_heads();
    j["head_dim"] = c.head_dim();
    j["max_position_embeddings"] = c.max_seq_len;
    j["hidden_act"] = "silu";
    j["rms_norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = nullptr;
    if (!c.rope_scaling.empty())
      j["rope_scaling"] = {
          {"rope_type", c.rope_scaling},
          {"factor", c.rope_scaling_factor},
          {"low_freq_factor", c.rope_scaling_low_freq_factor},
          {"high_freq_factor", c.rope_scaling_high_freq_factor},
          {"original_max_position_embeddings", c.rope_scaling_original_max_position_embeddings}};
    j["attention_bias"] = false;
    j["attention_dropout"] = 0.0;
    j["mlp_bias"] = false;
    j["pretraining_tp"] = 1;
    j["initializer_range"] = 0.02;
    hf_config_end(j, c.tie_embeddings == 1, ids);
    return j;
  }

  ModelConfig config_from_hf(const nlohmann::json& j, const std::string& where) const override {
    ModelConfig c;
    c.family = "llama";
    c.n_layer = static_cast<int>(hf_int(j, "num_hidden_layers", where));
    c.n_head = static_cast<int>(hf_int(j, "num_attention_heads", where));
    c.n_kv_head = static_cast<int>(hf_int(j, "num_key_value_heads", c.n_head, where));
    c.n_embd = static_cast<int>(hf_int(j, "hidden_size", where));
    c.intermediate_size = static_cast<int>(hf_int(j, "intermediate_size", where));
    c.vocab_size = static_cast<int>(hf_int(j, "vocab_size", where));
    c.max_seq_len = static_cast<int>(hf_int(j, "max_position_embeddings", where));
    c.norm_eps = hf_number(j, "rms_norm_eps", 1e-6, where);
    c.tie_embeddings = hf_bool(j, "tie_word_embeddings", false, where) ? 1 : 0;
    // transformers 5 writes rope_parameters {rope_type, rope_theta}; 4.x rope_theta + rope_scaling.
    const nlohmann::json none = nlohmann::json::object();
    const nlohmann::json& rope =
        j.contains("rope_parameters") && j["rope_parameters"].is_object()
            ? j["rope_parameters"]
            : (j.contains("rope_scaling") && j["rope_scaling"].is_object() ? j["rope_scaling"]
                                                                           : none);
    c.rope_theta = hf_number(rope, "rope_theta", hf_number(j, "rope_theta", 10000.0, where), where);
    const std::string rope_type = hf_string(rope, "rope_type", "default", where);
    hf_require(rope_type == "default" || rope_type == "llama3", where,
               "rope_scaling/rope_parameters", "asks for rope_type '" + rope_type + "'");
    if (rope_type == "llama3") {  // Llama 3.1's frequency rescale
      c.rope_scaling = rope_type;
      c.rope_scaling_factor = hf_number(rope, "factor", 0, where);
      c.rope_scaling_low_freq_factor = hf_number(rope, "low_freq_factor", 0, where);
      c.rope_scaling_high_freq_factor = hf_number(rope, "high_freq_factor", 0, where);
      c.rope_scaling_original_max_position_embeddings =
          static_cast<int>(hf_int(rope, "original_max_position_embeddings", 0, where));
    }
    const std::string act = hf_string(j, "hidden_act", "silu", where);
    hf_require(act == "silu", where, "hidden_act", "is '" + act + "', not silu");
    hf_require(!hf_bool(j, "attention_bias", false, where), where, "attention_bias", "is true");
    hf_require(!hf_bool(j, "mlp_bias", false, where), where, "mlp_bias", "is true");
    if (c.n_head > 0)
      hf_require(hf_int(j, "head_dim", c.n_embd / c.n_head, where) * c.n_head == c.n_embd, where,
                 "head_dim", "times num_attention_heads is not hidden_size");
    return c;
  }

  std::vector<ExternalTensor> hf_tensors(const ModelConfig& c) const override {
    const int64_t C = c.n_embd, F = c.intermediate_size, g = c.n_head / c.kv_heads();
    std::vector<ExternalTensor> out = {vocab_rows("model.embed_tokens.weight", "embed_tokens", c)};
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string s = "h." + std::to_string(l) + ".",
                        hf = "model.layers." + std::to_string(l) + ".";
      out.push_back(same_tensor(hf + "input_layernorm.weight", s + "input_norm.weight", {C}));
      const std::string qkv = s + "attn.qkv.weight";
      out.push_back(qkv_part(hf + "self_attn.q_proj.weight", qkv, c, 0, static_cast<int>(g)));
      out.push_back(qkv_part(hf + "self_attn.k_proj.weight", qkv, c, static_cast<int>(g), 1));
      out.push_back(qkv_part(hf + "self_attn.v_proj.weight", qkv, c, static_cast<int>(g) + 1, 1));
      out.push_back(same_tensor(hf + "self_attn.o_proj.weight", s + "attn.o_proj.weight",
                                {C, c.n_head * int64_t{c.head_dim()}}));
      out.push_back(
          same_tensor(hf + "post_attention_layernorm.weight", s + "post_attn_norm.weight", {C}));
      out.push_back(gate_up_part(hf + "mlp.gate_proj.weight", s + "mlp.gate_up.weight", c, 0));
      out.push_back(gate_up_part(hf + "mlp.up_proj.weight", s + "mlp.gate_up.weight", c, 1));
      out.push_back(same_tensor(hf + "mlp.down_proj.weight", s + "mlp.down.weight", {C, F}));
    }
    out.push_back(same_tensor("model.norm.weight", "norm.weight", {C}));
    if (c.tie_embeddings == 0) out.push_back(vocab_rows("lm_head.weight", "lm_head", c));
    return out;
  }

  bool hf_ignorable(const std::string& name, const ModelConfig& c) const override {
    return (name == "lm_head.weight" && c.tie_embeddings == 1) ||
           name.ends_with(".rotary_emb.inv_freq");
  }

  std::string gguf_architecture() const override { return "llama"; }

  std::vector<std::pair<std::string, InterchangeValue>> gguf_hparams(
      const ModelConfig& c) const override {
    return {{"context_length", int64_t{c.max_seq_len}},
            {"embedding_length", int64_t{c.n_embd}},
            {"block_count", int64_t{c.n_layer}},
            {"feed_forward_length", int64_t{c.intermediate_size}},
            {"rope.dimension_count", int64_t{c.head_dim()}},
            {"attention.head_count", int64_t{c.n_head}},
            {"attention.head_count_kv", int64_t{c.kv_heads()}},
            {"attention.layer_norm_rms_epsilon", c.norm_eps},
            {"rope.freq_base", c.rope_theta},
            {"vocab_size", int64_t{c.vocab_size}}};
  }

  // Llama 3.1's rope scaling: llama.cpp divides frequency i by rope_freqs[i]
  // (LLM_TENSOR_ROPE_FREQS, what convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors writes
  // for rope_type llama3).
  std::vector<ComputedTensor> gguf_computed_tensors(const ModelConfig& c) const override {
    if (c.rope_scaling.empty()) return {};
    std::vector<float> factors = llama3_frequency_factors(c);
    const auto n = static_cast<int64_t>(factors.size());
    return {{"rope_freqs.weight", {n}, std::move(factors)}};
  }

  // llama.cpp's llama names (llama-arch.cpp); output.weight is written even when tied (a copy
  // of token_embd) so that no loader version has to know.
  std::vector<ExternalTensor> gguf_tensors(const ModelConfig& c) const override {
    const int64_t C = c.n_embd, F = c.intermediate_size;
    const int g = c.n_head / c.kv_heads();
    std::vector<ExternalTensor> out = {vocab_rows("token_embd.weight", "embed_tokens", c)};
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string s = "h." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
      const std::string qkv = s + "attn.qkv.weight";
      out.push_back(same_tensor(b + "attn_norm.weight", s + "input_norm.weight", {C}));
      out.push_back(rope_rows(qkv_part(b + "attn_q.weight", qkv, c, 0, g), c));
      out.push_back(rope_rows(qkv_part(b + "attn_k.weight", qkv, c, g, 1), c));
      out.push_back(qkv_part(b + "attn_v.weight", qkv, c, g + 1, 1));
      out.push_back(same_tensor(b + "attn_output.weight", s + "attn.o_proj.weight",
                                {C, c.n_head * int64_t{c.head_dim()}}));
      out.push_back(same_tensor(b + "ffn_norm.weight", s + "post_attn_norm.weight", {C}));
      out.push_back(gate_up_part(b + "ffn_gate.weight", s + "mlp.gate_up.weight", c, 0));
      out.push_back(gate_up_part(b + "ffn_up.weight", s + "mlp.gate_up.weight", c, 1));
      out.push_back(same_tensor(b + "ffn_down.weight", s + "mlp.down.weight", {C, F}));
    }
    out.push_back(same_tensor("output_norm.weight", "norm.weight", {C}));
    out.push_back(vocab_rows("output.weight", c.tie_embeddings ? "embed_tokens" : "lm_head", c));
    return out;
  }
};

}  // namespace

const FamilyInterchange& llama_interchange() {
  static const LlamaInterchange mapping;
  return mapping;
}

}  // namespace shardlm
