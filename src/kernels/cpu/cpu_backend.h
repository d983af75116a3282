// The CPU implementation of KernelBackend: OpenMP over rows/heads, inner loops the compiler
// vectorises (-march=native), oneDNN's sgemm for the linear layers and tiled flash attention
// (flash_attention.h). Each op family lives in its own .cpp in this folder
// (memory, embedding, layernorm, rmsnorm, matmul, attention + attention_gqa over flash_attention,
// rope, gelu, swiglu, elementwise, cross_entropy, optimizer, decode + decode_gqa); shapes and
// conventions are documented in kernels/backend.h. Results are deterministic for a fixed OMP
// thread count: cross-row reductions use per-thread partials combined in thread order, never
// atomics.
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include "kernels/backend.h"

namespace shardlm {
inline namespace SHARDLM_CPU_ISA {

class CpuBackend final : public KernelBackend {
 public:
  const char* name() const override { return "cpu"; }

  // memory (memory.cpp)
  void copy_from_host(void* dst, const void* src_host, size_t bytes) override;
  void copy_to_host(void* dst_host, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill_zero(float* p, size_t n) override;
  void synchronize() override;
  bool host_memory() const override { return true; }

  // embedding (embedding.cpp)
  void token_embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C,
                               int vocab_start, int Vl) override;
  void token_embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C,
                                int vocab_start, int Vl) override;
  void position_embedding_forward(float* out, const float* wpe, int B, int T, int C) override;
  void position_embedding_backward(float* dwpe, const float* dout, int B, int T, int C) override;

  // layernorm (layernorm.cpp)
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int N, int C) override;
  void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, const float* mean,
                          const float* rstd, int N, int C) override;

  // RMSNorm (rmsnorm.cpp)
  void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                       float eps) override;
  void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                        const float* weight, const float* rstd, int N, int C) override;

  // matmul (matmul.cpp)
  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override;
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override;

  // attention (attention.cpp)
  void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int NH,
                         int hd) override;
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* lse, int B, int T, int NH, int hd) override;

  // KV-cached attention for inference (decode.cpp)
  void kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq, int NH,
                       int hd, int max_seq) override;
  void attention_decode(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                        int pos0, int Tq, int NH, int hd, int max_seq) override;

  // RoPE (rope.cpp)
  void rope_forward(float* qkv, const float* cos, const float* sin, int B, int T, int pos0, int KV,
                    int g, int hd) override;
  void rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T, int pos0,
                     int KV, int g, int hd) override;

  // grouped-query attention (attention_gqa.cpp)
  void attention_gqa_forward(float* out, float* lse, const float* qkv, int B, int T, int KV, int g,
                             int hd) override;
  void attention_gqa_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                              const float* lse, int B, int T, int KV, int g, int hd) override;

  // KV-cached grouped-query attention for inference (decode_gqa.cpp)
  void kv_cache_append_gqa(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq,
                           int KV, int g, int hd, int max_seq) override;
  void attention_decode_gqa(float* out, const float* qkv, const float* k_cache,
                            const float* v_cache, int pos0, int Tq, int KV, int g, int hd,
                            int max_seq) override;

  // GELU (gelu.cpp)
  void gelu_forward(float* out, const float* inp, size_t n) override;
  void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) override;

  // SwiGLU (swiglu.cpp)
  void swiglu_forward(float* out, const float* gu, int N, int F) override;
  void swiglu_backward(float* dgu, const float* gu, const float* dout, int N, int F) override;

  // elementwise (elementwise.cpp)
  void add(float* out, const float* a, const float* b, size_t n) override;
  void add_inplace(float* acc, const float* x, size_t n) override;
  void scale_inplace(float* x, float s, size_t n) override;

  // vocab-parallel cross-entropy (cross_entropy.cpp)
  void xent_row_max(float* row_max, const float* logits, int N, int Vl, int vocab_start,
                    int vocab_size) override;
  void xent_partial_sums(float* sum_exp, float* target_logit, const float* logits,
                         const float* row_max, const int32_t* targets, int N, int Vl,
                         int vocab_start, int vocab_size) override;
  void xent_loss(float* losses, const float* row_max, const float* sum_exp,
                 const float* target_logit, int N) override;
  void xent_backward(float* dlogits, const float* logits, const float* row_max,
                     const float* sum_exp, const int32_t* targets, float dloss, int N, int Vl,
                     int vocab_start, int vocab_size) override;

  // optimizer (optimizer.cpp)
  double sum_squares(const float* x, size_t n) override;
  void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                    int step) override;

 protected:
  void* allocate_bytes(size_t bytes) override;  // memory.cpp
  void release_bytes(void* p) override;
};

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm
