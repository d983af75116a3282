#include "model/llama/decoder.h"

#include "model/kv_cache_decoder.h"
#include "model/llama/block.h"
#include "model/llama/rope.h"
#include "model/vocab_parallel.h"

namespace shardlm {

namespace {

// Shapes (block.h) with the whole model on one rank; S = max_seq_len rows at most.
class LlamaDecoder final : public KvCacheDecoder {
 public:
  LlamaDecoder(const ModelConfig& cfg, KernelBackend& backend)
      : KvCacheDecoder(model_family("llama"), cfg, backend, cfg.kv_heads(), cfg.head_dim()),
        dims_{max_rows(),
              cfg.n_embd,
              cfg.kv_heads(),
              cfg.n_head / cfg.kv_heads(),
              cfg.head_dim(),
              cfg.intermediate_size,
              static_cast<float>(cfg.norm_eps)} {
    const size_t S = max_rows(), C = dims_.C;
    float* norm = alloc(S * C);
    float* rstd = alloc(S);
    float* proj = alloc(S * C);
    acts_ = {norm, rstd, alloc(S * dims_.qkv()),  alloc(S * dims_.attn()), proj, alloc(S * C),
             norm, rstd, alloc(S * 2 * dims_.Fl), alloc(S * dims_.Fl),     proj};
    const RopeTables rope = rope_tables(cfg);
    rope_cos_ = alloc(rope.cos.size());
    rope_sin_ = alloc(rope.sin.size());
    backend.copy_from_host(rope_cos_, rope.cos.data(), rope.cos.size() * sizeof(float));
    backend.copy_from_host(rope_sin_, rope.sin.data(), rope.sin.size() * sizeof(float));
  }

 private:
  void embed_forward(float* resid, const int32_t* tokens, int n, int) override {
    vocab_embedding_forward(backend(), tp(), resid, tokens, param("embed_tokens"), n, dims_.C,
                            {0, cfg_.padded_vocab(), cfg_.vocab_size});
  }

  void block_forward(int layer, float* resid, int n, int pos0, float* k_cache,
                     float* v_cache) override {
    const int KV = dims_.KVl, g = dims_.g, hd = dims_.hd, S = max_rows();
    const auto attention = [&](float* out, float* qkv) {
      backend().rope_forward(qkv, rope_cos_, rope_sin_, 1, n, pos0, KV, g, hd);
      backend().kv_cache_append_gqa(k_cache, v_cache, qkv, pos0, n, KV, g, hd, S);
      backend().attention_decode_gqa(out, qkv, k_cache, v_cache, pos0, n, KV, g, hd, S);
    };
    LlamaDims d = dims_;
    d.N = n;
    llama_block_forward(
        backend(), tp(), d,
        llama_block_tensors(weights().layout(), weights().layer_params(layer), layer), acts_, resid,
        resid, attention);
  }

  const float* final_norm_forward(const float* row) override {
    backend().rmsnorm_forward(acts_.norm1, acts_.norm1_rstd, row, param("norm.weight"), 1, dims_.C,
                              dims_.eps);
    return acts_.norm1;
  }
  const char* head_name() const override {
    return cfg_.tie_embeddings ? "embed_tokens" : "lm_head";
  }

  LlamaDims dims_;  // N is the most rows of one forward (max_seq_len)
  // Per-sublayer buffers for S rows (the norms share one, the projections one).
  LlamaBlockActs acts_{};
  float* rope_cos_ = nullptr;  // [S, hd/2]
  float* rope_sin_ = nullptr;  // [S, hd/2]
};

}  // namespace

std::unique_ptr<CachedDecoder> make_llama_decoder(const ModelConfig& cfg, KernelBackend& backend) {
  return std::make_unique<LlamaDecoder>(cfg, backend);
}

}  // namespace shardlm
