#include "model/gpt2/decoder.h"

#include "model/gpt2/block.h"
#include "model/kv_cache_decoder.h"

namespace shardlm {

namespace {

// Shapes: S = max_seq_len rows at most, C channels of NH heads of hd.
class Gpt2Decoder final : public KvCacheDecoder {
 public:
  Gpt2Decoder(const ModelConfig& cfg, KernelBackend& backend)
      : KvCacheDecoder(model_family("gpt2"), cfg, backend, cfg.n_head, cfg.head_dim()) {
    const size_t S = max_rows(), C = cfg.n_embd;
    float* ln = alloc(S * C);
    float* mean = alloc(S);
    float* rstd = alloc(S);
    float* proj = alloc(S * C);
    acts_ = {ln, mean, rstd, alloc(S * 3 * C), alloc(S * C),     proj, alloc(S * C),
             ln, mean, rstd, alloc(S * 4 * C), alloc(S * 4 * C), proj};
  }

 private:
  void embed_forward(float* resid, const int32_t* tokens, int n, int pos0) override {
    gpt2_embedding_forward(backend(), tp(), resid, tokens, param("wte"), param("wpe"), 1, n,
                           cfg_.n_embd, pos0, 0, cfg_.padded_vocab());
  }

  void block_forward(int layer, float* resid, int n, int pos0, float* k_cache,
                     float* v_cache) override {
    const int NH = cfg_.n_head, hd = cfg_.head_dim(), S = max_rows(), C = cfg_.n_embd;
    const auto attention = [&](float* out, const float* qkv) {
      backend().kv_cache_append(k_cache, v_cache, qkv, pos0, n, NH, hd, S);
      backend().attention_decode(out, qkv, k_cache, v_cache, pos0, n, NH, hd, S);
    };
    const Gpt2Dims dims{n, C, C, 4 * C};
    gpt2_block_forward(backend(), tp(), dims,
                       gpt2_block_tensors(weights().layout(), weights().layer_params(layer), layer),
                       acts_, resid, resid, attention);
  }

  const float* final_norm_forward(const float* row) override {
    backend().layernorm_forward(acts_.ln1, acts_.ln1_mean, acts_.ln1_rstd, row,
                                param("ln_f.weight"), param("ln_f.bias"), 1, cfg_.n_embd);
    return acts_.ln1;
  }
  const char* head_name() const override { return "wte"; }  // tied

  // For S rows: ln [S,C] (ln_1, ln_2 and the final LayerNorm), qkv [S,3C], atty [S,C], proj
  // [S,C] (both c_proj outputs), resid2 [S,C], fc/fc_gelu [S,4C].
  Gpt2BlockActs acts_{};
};

}  // namespace

std::unique_ptr<CachedDecoder> make_gpt2_decoder(const ModelConfig& cfg, KernelBackend& backend) {
  return std::make_unique<Gpt2Decoder>(cfg, backend);
}

}  // namespace shardlm
