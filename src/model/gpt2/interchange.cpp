// GPT-2's names and layouts in Hugging Face and GGUF files. transformers' GPT-2 uses Conv1D
// (weight [in, out], y = x W + b), the transpose of shardlm's [out, in]; llama.cpp's gpt2 stores
// [out, in] like shardlm. Both drop the padded vocabulary rows.
#include "model/gpt2/interchange.h"

#include "core/error.h"

namespace shardlm {

namespace {

// A shardlm [out, in] matrix (any shape that flattens to it) as a Conv1D [in, out] weight.
ExternalTensor conv1d(std::string name, std::string source, std::vector<int64_t> source_shape,
                      int64_t in, int64_t out) {
  ExternalTensor t{std::move(name), {in, out}, std::move(source), {whole_piece(source_shape)}};
  t.layout = ExternalLayout::kTransposed;
  return t;
}

class Gpt2Interchange final : public FamilyInterchange {
 public:
  std::string family() const override { return "gpt2"; }
  std::string hf_model_type() const override { return "gpt2"; }

  nlohmann::ordered_json hf_config(const ModelConfig& c, const SpecialIds& ids) const override {
    nlohmann::ordered_json j = hf_config_begin("GPT2LMHeadModel", "gpt2", c);
    j["n_positions"] = c.max_seq_len;
    j["n_ctx"] = c.max_seq_len;
    j["n_embd"] = c.n_embd;
    j["n_layer"] = c.n_layer;
    j["n_head"] = c.n_head;
    j["n_inner"] = nullptr;                 // 4 * n_embd
    j["activation_function"] = "gelu_new";  // the tanh approximation shardlm computes
    j["layer_norm_epsilon"] = 1e-5;
    j["resid_pdrop"] = 0.0;
    j["embd_pdrop"] = 0.0;
    j["attn_pdrop"] = 0.0;
    j["initializer_range"] = 0.02;
    j["scale_attn_weights"] = true;
    j["scale_attn_by_inverse_layer_idx"] = false;
    j["reorder_and_upcast_attn"] = false;
    hf_config_end(j, /*tie_word_embeddings=*/true, ids);
    return j;
  }

  ModelConfig config_from_hf(const nlohmann::json& j, const std::string& where) const override {
    ModelConfig c;
    c.family = "gpt2";
    c.n_layer = static_cast<int>(hf_int(j, "n_layer", where));
    c.n_head = static_cast<int>(hf_int(j, "n_head", where));
    c.n_embd = static_cast<int>(hf_int(j, "n_embd", where));
    c.vocab_size = static_cast<int>(hf_int(j, "vocab_size", where));
    c.max_seq_len = static_cast<int>(hf_int(j, "n_positions", where));
    const std::string act = hf_string(j, "activation_function", "gelu_new", where);
    hf_require(act == "gelu_new" || act == "gelu_pytorch_tanh", where, "activation_function",
               "'" + act + "' is not the tanh GELU");
    hf_require(hf_int(j, "n_inner", 4 * c.n_embd, where) == 4 * c.n_embd, where, "n_inner",
               "other than 4 * n_embd");
    hf_require(hf_number(j, "layer_norm_epsilon", 1e-5, where) == 1e-5, where, "layer_norm_epsilon",
               "other than 1e-5");
    hf_require(hf_bool(j, "scale_attn_weights", true, where), where, "scale_attn_weights", "false");
    hf_require(!hf_bool(j, "scale_attn_by_inverse_layer_idx", false, where), where,
               "scale_attn_by_inverse_layer_idx", "true");
    hf_require(hf_bool(j, "tie_word_embeddings", true, where), where, "tie_word_embeddings",
               "false (an untied GPT-2 head)");
    hf_require(!hf_bool(j, "add_cross_attention", false, where), where, "add_cross_attention",
               "true");
    return c;
  }

  std::vector<ExternalTensor> hf_tensors(const ModelConfig& c) const override {
    const int64_t C = c.n_embd, H = c.n_head, hd = c.head_dim();
    std::vector<ExternalTensor> out = {
        vocab_rows("transformer.wte.weight", "wte", c),
        same_tensor("transformer.wpe.weight", "wpe", {c.max_seq_len, C})};
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string s = "h." + std::to_string(l) + ".", hf = "transformer." + s;
      auto vec = [&](const char* name, int64_t n) {
        out.push_back(same_tensor(hf + name, s + name, {n}));
      };
      vec("ln_1.weight", C);
      vec("ln_1.bias", C);
      out.push_back(
          conv1d(hf + "attn.c_attn.weight", s + "attn.c_attn.weight", {3, H, hd, C}, C, 3 * C));
      out.push_back(ExternalTensor{
          hf + "attn.c_attn.bias", {3 * C}, s + "attn.c_attn.bias", {whole_piece({3, H, hd})}});
      out.push_back(conv1d(hf + "attn.c_proj.weight", s + "attn.c_proj.weight", {C, C}, C, C));
      vec("attn.c_proj.bias", C);
      vec("ln_2.weight", C);
      vec("ln_2.bias", C);
      out.push_back(conv1d(hf + "mlp.c_fc.weight", s + "mlp.c_fc.weight", {4 * C, C}, C, 4 * C));
      vec("mlp.c_fc.bias", 4 * C);
      out.push_back(
          conv1d(hf + "mlp.c_proj.weight", s + "mlp.c_proj.weight", {C, 4 * C}, 4 * C, C));
      vec("mlp.c_proj.bias", C);
    }
    out.push_back(same_tensor("transformer.ln_f.weight", "ln_f.weight", {C}));
    out.push_back(same_tensor("transformer.ln_f.bias", "ln_f.bias", {C}));
    return out;
  }

  // The tied head's copy and the causal-mask buffers older GPT-2 files carry.
  bool hf_ignorable(const std::string& name, const ModelConfig&) const override {
    return name == "lm_head.weight" || name.ends_with(".attn.bias") ||
           name.ends_with(".attn.masked_bias");
  }

  std::string gguf_architecture() const override { return "gpt2"; }

  std::vector<std::pair<std::string, InterchangeValue>> gguf_hparams(
      const ModelConfig& c) const override {
    return {{"context_length", int64_t{c.max_seq_len}},     {"embedding_length", int64_t{c.n_embd}},
            {"feed_forward_length", int64_t{4} * c.n_embd}, {"block_count", int64_t{c.n_layer}},
            {"attention.head_count", int64_t{c.n_head}},    {"attention.layer_norm_epsilon", 1e-5}};
  }

  // llama.cpp's gpt2 names (llama-arch.cpp); the head is written as output.weight, a copy of
  // token_embd, so that no loader version has to know it is tied.
  std::vector<ExternalTensor> gguf_tensors(const ModelConfig& c) const override {
    const int64_t C = c.n_embd, H = c.n_head, hd = c.head_dim();
    std::vector<ExternalTensor> out = {
        vocab_rows("token_embd.weight", "wte", c),
        same_tensor("position_embd.weight", "wpe", {c.max_seq_len, C})};
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string s = "h." + std::to_string(l) + ".", g = "blk." + std::to_string(l) + ".";
      auto add = [&](const char* name, const char* source, std::vector<int64_t> shape,
                     std::vector<int64_t> source_shape) {
        out.push_back({g + name, std::move(shape), s + source, {whole_piece(source_shape)}});
      };
      add("attn_norm.weight", "ln_1.weight", {C}, {C});
      add("attn_norm.bias", "ln_1.bias", {C}, {C});
      add("attn_qkv.weight", "attn.c_attn.weight", {3 * C, C}, {3, H, hd, C});
      add("attn_qkv.bias", "attn.c_attn.bias", {3 * C}, {3, H, hd});
      add("attn_output.weight", "attn.c_proj.weight", {C, C}, {C, C});
      add("attn_output.bias", "attn.c_proj.bias", {C}, {C});
      add("ffn_norm.weight", "ln_2.weight", {C}, {C});
      add("ffn_norm.bias", "ln_2.bias", {C}, {C});
      add("ffn_up.weight", "mlp.c_fc.weight", {4 * C, C}, {4 * C, C});
      add("ffn_up.bias", "mlp.c_fc.bias", {4 * C}, {4 * C});
      add("ffn_down.weight", "mlp.c_proj.weight", {C, 4 * C}, {C, 4 * C});
      add("ffn_down.bias", "mlp.c_proj.bias", {C}, {C});
    }
    out.push_back(same_tensor("output_norm.weight", "ln_f.weight", {C}));
    out.push_back(same_tensor("output_norm.bias", "ln_f.bias", {C}));
    out.push_back(vocab_rows("output.weight", "wte", c));
    return out;
  }
};

}  // namespace

const FamilyInterchange& gpt2_interchange() {
  static const Gpt2Interchange mapping;
  return mapping;
}

}  // namespace shardlm
