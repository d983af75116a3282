// The CUDA implementation of KernelBackend: device memory, one CUDA stream for every kernel,
// copy and cuBLAS call (so the ops of a step run in the order the model issues them), cuBLAS
// fp32 GEMMs for the linear layers and attention's batched products, and hand-written kernels
// for the rest. Each op family lives in its own file in this folder (memory, embedding,
// layernorm, rmsnorm, matmul, attention, rope, gelu, swiglu, elementwise, cross_entropy,
// optimizer, decode; multi-head and grouped-query attention share attention.cu and decode.cu);
// shapes and the += / = conventions are those of kernels/backend.h, and the tests check every
// op against the CPU backend.
//
// Numerics: fp32 throughout, TF32 tensor cores off unless asked for (set_tf32, or the
// environment variable SHARDLM_CUDA_TF32=1), so results agree with the CPU backend to fp32
// rounding. Reductions over rows (bias and LayerNorm weight gradients, the gradient norm) use
// fixed-order partial sums, never floating-point atomics, so a run repeats bit for bit; the
// token-embedding gradient adds each vocabulary row's contributions in token order, exactly
// as the CPU backend does.
//
// This header needs no CUDA headers, so host-only code (tests, benchmarks, the trainer) can
// include it; the CUDA types are forward-declared.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"

struct CUstream_st;    // cudaStream_t is CUstream_st*
struct cublasContext;  // cublasHandle_t is cublasContext*

namespace shardlm {

class CudaBackend final : public KernelBackend {
 public:
  // Uses the current CUDA device (cudaSetDevice before the first cuda_backend() call picks
  // another). Throws shardlm::Error when there is no usable device.
  CudaBackend();
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  const char* name() const override { return "cuda"; }

  // TF32 tensor-core GEMMs (10-bit mantissa products, fp32 accumulation): several times the
  // fp32 GEMM rate, at about 1e-3 relative error per product. Off by default.
  void set_tf32(bool enabled);
  bool tf32() const { return tf32_; }
  int device() const { return device_; }

  // memory (memory.cpp)
  size_t device_free_bytes() const override;
  void copy_from_host(void* dst, const void* src_host, size_t bytes) override;
  void copy_to_host(void* dst_host, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill_zero(float* p, size_t n) override;
  void synchronize() override;
  bool host_memory() const override { return false; }

  // embedding (embedding.cu)
  void token_embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C,
                               int vocab_start, int Vl) override;
  void token_embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C,
                                int vocab_start, int Vl) override;
  void position_embedding_forward(float* out, const float* wpe, int B, int T, int C) override;
  void position_embedding_backward(float* dwpe, const float* dout, int B, int T, int C) override;

  // layernorm (layernorm.cu)
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int N, int C) override;
  void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, const float* mean,
                          const float* rstd, int N, int C) override;

  // RMSNorm (rmsnorm.cu)
  void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                       float eps) override;
  void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                        const float* weight, const float* rstd, int N, int C) override;

  // matmul (matmul.cu)
  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override;
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override;

  // attention (attention.cu)
  void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int NH,
                         int hd) override;
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* lse, int B, int T, int NH, int hd) override;

  // KV-cached attention for inference (decode.cu)
  void kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq, int NH,
                       int hd, int max_seq) override;
  void attention_decode(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                        int pos0, int Tq, int NH, int hd, int max_seq) override;

  // RoPE (rope.cu)
  void rope_forward(float* qkv, const float* cos, const float* sin, int B, int T, int pos0, int KV,
                    int g, int hd) override;
  void rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T, int pos0,
                     int KV, int g, int hd) override;

  // grouped-query attention (attention.cu)
  void attention_gqa_forward(float* out, float* lse, const float* qkv, int B, int T, int KV, int g,
                             int hd) override;
  void attention_gqa_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                              const float* lse, int B, int T, int KV, int g, int hd) override;

  // KV-cached grouped-query attention for inference (decode.cu)
  void kv_cache_append_gqa(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq,
                           int KV, int g, int hd, int max_seq) override;
  void attention_decode_gqa(float* out, const float* qkv, const float* k_cache,
                            const float* v_cache, int pos0, int Tq, int KV, int g, int hd,
                            int max_seq) override;

  // GELU (gelu.cu)
  void gelu_forward(float* out, const float* inp, size_t n) override;
  void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) override;

  // SwiGLU (swiglu.cu)
  void swiglu_forward(float* out, const float* gu, int N, int F) override;
  void swiglu_backward(float* dgu, const float* gu, const float* dout, int N, int F) override;

  // elementwise (elementwise.cu)
  void add(float* out, const float* a, const float* b, size_t n) override;
  void add_inplace(float* acc, const float* x, size_t n) override;
  void scale_inplace(float* x, float s, size_t n) override;

  // vocab-parallel cross-entropy (cross_entropy.cu)
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

  // optimizer (optimizer.cu)
  double sum_squares(const float* x, size_t n) override;
  void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                    int step) override;

 protected:
  void* allocate_bytes(size_t bytes) override;  // memory.cpp
  void release_bytes(void* p) override;

 private:
  // Backend-owned device workspaces, one per use so that one op can hold several at once.
  // Each grows on demand and is reused in stream order (every kernel runs on stream_).
  enum class Scratch {
    ColumnPartials,
    Reduction,
    Indices,
    DecodeScores,
    CopyStaging,
    AttentionProbs,
    AttentionGrads,
    kCount
  };
  void* scratch(Scratch slot, size_t bytes);
  float* attention_scratch(Scratch slot, int B, int T, int heads);  // [B,heads,T,T]

  int device_ = 0;
  CUstream_st* stream_ = nullptr;
  cublasContext* cublas_ = nullptr;
  bool tf32_ = false;
  void* scratch_ptr_[static_cast<int>(Scratch::kCount)] = {};
  size_t scratch_bytes_[static_cast<int>(Scratch::kCount)] = {};
};

// The process's CUDA backend, created on first use on the current device. Throws
// shardlm::Error when there is no usable device (see cuda_device_available()).
KernelBackend& cuda_backend();

// True when the CUDA runtime sees at least one device. Never throws.
bool cuda_device_available();

// The devices the CUDA runtime sees (CUDA_VISIBLE_DEVICES applies); 0 with no driver or device.
// Never throws.
int cuda_runtime_device_count();

// Makes `device` the current CUDA device (cudaSetDevice) before cuda_backend() first runs: the
// backend is created on it. Throws shardlm::Error naming the device when the runtime refuses.
void use_cuda_device(int device);

}  // namespace shardlm
