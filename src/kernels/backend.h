// The kernel seam. Every op family has forward/backward functions with the same argument
// order; every backend (cpu/, cuda/; kernels/registry.h resolves --device) implements all of
// them, and the model calls them through this interface without branching on the device.
// Pointers are backend memory (host memory for the CPU backend, device memory for CUDA).
//
// Conventions:
//  - The element type is in the signature: float* is f32 (every op computes in f32 today).
//    Buffers are allocated with their DType (alloc); a bf16 kernel is an added overload over
//    bf16* (core/dtype.h), not a change to these. Counts are elements.
//  - Parameter gradients ACCUMULATE (+=), so gradient accumulation over micro-batches is free.
//  - Activation gradients are WRITTEN (=), except where noted as residual-stream (+=).
//  - N = B*T rows (tokens); C = channels; OC = output channels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/memory_account.h"

namespace shardlm {

class KernelBackend {
 public:
  virtual ~KernelBackend() = default;
  virtual const char* name() const = 0;

  // ---- memory -------------------------------------------------------------------------
  // n zero-filled elements of `dtype`, counted under `role` in memory(); throws naming the
  // size when it cannot. Every site in src/ names its role; tests and benchmarks' scratch
  // buffers default to workspace.
  void* alloc(size_t n, DType dtype, MemoryRole role = MemoryRole::Workspace);
  template <typename T>
  T* alloc_array(size_t n, MemoryRole role = MemoryRole::Workspace) {
    return static_cast<T*>(alloc(n, dtype_of<T>(), role));
  }
  float* alloc_floats(size_t n, MemoryRole role = MemoryRole::Workspace) {
    return alloc_array<float>(n, role);
  }
  int32_t* alloc_ints(size_t n, MemoryRole role = MemoryRole::Workspace) {
    return alloc_array<int32_t>(n, role);
  }
  void free_memory(void* p);  // null is a no-op
  // Live and peak bytes of this backend's allocations (the process's, for a backend instance
  // is process-wide).
  MemoryAccount& memory() { return account_; }
  const MemoryAccount& memory() const { return account_; }
  // The device's free memory in bytes as the backend sees it (cudaMemGetInfo), or 0 when the
  // backend's memory is host memory (the planner's preflight then reads the host's limits).
  virtual size_t device_free_bytes() const { return 0; }
  virtual void copy_from_host(void* dst, const void* src_host, size_t bytes) = 0;
  virtual void copy_to_host(void* dst_host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void fill_zero(float* p, size_t n) = 0;
  virtual void synchronize() = 0;
  // True when backend memory is ordinary host memory, so host code (checkpoint I/O, MPI) may
  // use the pointers directly instead of staging through host copies.
  virtual bool host_memory() const = 0;

  // ---- embedding (vocab-parallel) --------------------------------------------------------
  // out[n,:] = wte[tokens[n] - vocab_start, :] if vocab_start <= tokens[n] < vocab_start+Vl,
  // else 0 (another TP rank owns that row; the TP all-reduce fills it in).
  virtual void token_embedding_forward(float* out /*[N,C]*/, const int32_t* tokens /*[N]*/,
                                       const float* wte /*[Vl,C]*/, int N, int C, int vocab_start,
                                       int Vl) = 0;
  // dwte[tokens[n]-vocab_start,:] += dout[n,:] for the tokens in this rank's range.
  virtual void token_embedding_backward(float* dwte /*[Vl,C]*/, const float* dout /*[N,C]*/,
                                        const int32_t* tokens /*[N]*/, int N, int C,
                                        int vocab_start, int Vl) = 0;
  // out[b,t,:] += wpe[t,:]
  virtual void position_embedding_forward(float* out /*[B,T,C]*/, const float* wpe /*[>=T,C]*/,
                                          int B, int T, int C) = 0;
  // dwpe[t,:] += sum_b dout[b,t,:]
  virtual void position_embedding_backward(float* dwpe /*[>=T,C]*/, const float* dout /*[B,T,C]*/,
                                           int B, int T, int C) = 0;

  // ---- layernorm (eps 1e-5) ----------------------------------------------------------------
  virtual void layernorm_forward(float* out /*[N,C]*/, float* mean /*[N]*/, float* rstd /*[N]*/,
                                 const float* inp /*[N,C]*/, const float* weight /*[C]*/,
                                 const float* bias /*[C]*/, int N, int C) = 0;
  // dinp += (residual stream); dweight += ; dbias +=
  virtual void layernorm_backward(float* dinp /*[N,C]*/, float* dweight /*[C]*/,
                                  float* dbias /*[C]*/, const float* dout /*[N,C]*/,
                                  const float* inp /*[N,C]*/, const float* weight /*[C]*/,
                                  const float* mean /*[N]*/, const float* rstd /*[N]*/, int N,
                                  int C) = 0;

  // ---- RMSNorm: out = inp / sqrt(mean(inp^2) + eps) * weight ----------------------------------
  virtual void rmsnorm_forward(float* out /*[N,C]*/, float* rstd /*[N]*/,
                               const float* inp /*[N,C]*/, const float* weight /*[C]*/, int N,
                               int C, float eps) = 0;
  // dinp += (residual stream); dweight +=
  virtual void rmsnorm_backward(float* dinp /*[N,C]*/, float* dweight /*[C]*/,
                                const float* dout /*[N,C]*/, const float* inp /*[N,C]*/,
                                const float* weight /*[C]*/, const float* rstd /*[N]*/, int N,
                                int C) = 0;

  // ---- matmul: out = inp @ weight^T (+ bias) ---------------------------------------------
  // bias may be null.
  virtual void matmul_forward(float* out /*[N,OC]*/, const float* inp /*[N,C]*/,
                              const float* weight /*[OC,C]*/, const float* bias /*[OC] or null*/,
                              int N, int C, int OC) = 0;
  // dinp = dout @ weight (written; skipped if dinp is null); dweight += dout^T @ inp;
  // dbias += sum_n dout (skipped if dbias is null).
  virtual void matmul_backward(float* dinp /*[N,C]*/, float* dweight /*[OC,C]*/,
                               float* dbias /*[OC]*/, const float* dout /*[N,OC]*/,
                               const float* inp /*[N,C]*/, const float* weight /*[OC,C]*/, int N,
                               int C, int OC) = 0;

  // ---- causal self-attention -------------------------------------------------------------
  // qkv[b,t,:] = [q(NH heads x hd) | k(NH x hd) | v(NH x hd)], i.e. [B,T,3,NH,hd]; out is
  // [B,T,NH,hd]; scale 1/sqrt(hd). Nothing T x T is kept between forward and backward:
  // lse[b,h,t] = log sum_{j<=t} exp(scale * q_t . k_j), the softmax's log-normaliser, is what
  // backward needs to recompute the probabilities (FlashAttention's saved statistic).
  virtual void attention_forward(float* out /*[B,T,NH*hd]*/, float* lse /*[B,NH,T]*/,
                                 const float* qkv /*[B,T,3*NH*hd]*/, int B, int T, int NH,
                                 int hd) = 0;
  // dqkv written, from dout and the forward's qkv, out and lse. Workspace is backend-owned.
  virtual void attention_backward(float* dqkv /*[B,T,3*NH*hd]*/, const float* dout /*[B,T,NH*hd]*/,
                                  const float* qkv, const float* out /*[B,T,NH*hd]*/,
                                  const float* lse /*[B,NH,T]*/, int B, int T, int NH, int hd) = 0;

  // ---- KV-cached attention (inference) ---------------------------------------------------------
  // A layer's cache holds keys and values by head and position: k_cache and v_cache are
  // [NH, max_seq, hd] each. Tq new positions pos0..pos0+Tq-1 arrive as qkv rows laid out as in
  // attention_forward (pos0 + Tq <= max_seq).
  // Writes the k and v parts of the Tq rows into the cache at positions pos0..pos0+Tq-1.
  virtual void kv_cache_append(float* k_cache /*[NH,max_seq,hd]*/,
                               float* v_cache /*[NH,max_seq,hd]*/,
                               const float* qkv /*[Tq,3*NH*hd]*/, int pos0, int Tq, int NH, int hd,
                               int max_seq) = 0;
  // Causal attention of the Tq new queries against the cache (after kv_cache_append): query i
  // (position pos0+i) attends to positions 0..pos0+i, scale 1/sqrt(hd). Tq = 1 is one decode
  // step; pos0 = 0, Tq = T gives attention_forward's output for one sequence.
  virtual void attention_decode(float* out /*[Tq,NH*hd]*/, const float* qkv /*[Tq,3*NH*hd]*/,
                                const float* k_cache /*[NH,max_seq,hd]*/,
                                const float* v_cache /*[NH,max_seq,hd]*/, int pos0, int Tq, int NH,
                                int hd, int max_seq) = 0;

  // ---- grouped-query attention (Llama) -----------------------------------------------------
  // Row layout of qkv (per token): KV groups, each holding its g = H/KV query heads, then its
  // key head, then its value head: [KV, g+2, hd] (query head h = kv*g + i uses key/value head
  // kv; Megatron's "query groups", and Hugging Face's repeat_kv mapping). out rows are [H, hd]
  // with head h = kv*g + i.
  // RoPE (Hugging Face rotate-half): for each query and key head and i < hd/2, with
  // c = cos[pos][i], s = sin[pos][i]:
  //   x[i] <- x[i]*c - x[i+hd/2]*s ;  x[i+hd/2] <- x[i+hd/2]*c + x[i]*s.
  // Position of row (b, t) is pos0 + t. Value heads are untouched. In place. hd must be even
  // (throws otherwise); the tables must hold rows up to pos0 + T - 1 (not checked: their
  // length is not an argument).
  virtual void rope_forward(float* qkv /*[B,T,KV,g+2,hd]*/, const float* cos /*[max_seq,hd/2]*/,
                            const float* sin /*[max_seq,hd/2]*/, int B, int T, int pos0, int KV,
                            int g, int hd) = 0;
  // The transpose rotation applied in place to d(qkv) (value heads untouched).
  virtual void rope_backward(float* dqkv /*[B,T,KV,g+2,hd]*/, const float* cos, const float* sin,
                             int B, int T, int pos0, int KV, int g, int hd) = 0;
  // Causal softmax attention, scale 1/sqrt(hd); lse [B,H,T] as in attention_forward.
  virtual void attention_gqa_forward(float* out /*[B,T,H*hd]*/, float* lse /*[B,H,T]*/,
                                     const float* qkv /*[B,T,KV*(g+2)*hd]*/, int B, int T, int KV,
                                     int g, int hd) = 0;
  // dqkv written (q, k and v parts; a key/value head's gradient sums over its g query heads),
  // from dout and the forward's qkv, out and lse.
  virtual void attention_gqa_backward(float* dqkv /*[B,T,KV*(g+2)*hd]*/,
                                      const float* dout /*[B,T,H*hd]*/, const float* qkv,
                                      const float* out /*[B,T,H*hd]*/, const float* lse /*[B,H,T]*/,
                                      int B, int T, int KV, int g, int hd) = 0;
  // KV cache of KV heads (not H): k_cache, v_cache [KV, max_seq, hd]. Appends the (already
  // rotated) key and value heads of Tq rows at positions pos0.. ; then the Tq queries attend
  // causally to positions 0..pos0+i. pos0 = 0, Tq = T must give attention_gqa_forward's out for
  // one sequence. Both throw naming the positions when pos0 < 0 or pos0 + Tq > max_seq.
  virtual void kv_cache_append_gqa(float* k_cache, float* v_cache,
                                   const float* qkv /*[Tq,KV*(g+2)*hd]*/, int pos0, int Tq, int KV,
                                   int g, int hd, int max_seq) = 0;
  virtual void attention_decode_gqa(float* out /*[Tq,H*hd]*/, const float* qkv,
                                    const float* k_cache, const float* v_cache, int pos0, int Tq,
                                    int KV, int g, int hd, int max_seq) = 0;

  // ---- GELU (tanh approximation) -----------------------------------------------------------
  virtual void gelu_forward(float* out, const float* inp, size_t n) = 0;
  // dinp written
  virtual void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) = 0;

  // ---- SwiGLU: out[n,j] = silu(gu[n,j]) * gu[n,F+j], silu(x) = x / (1 + exp(-x)) ----------------
  // gu is the fused gate|up projection output [N, 2F] (gate columns first, then up).
  virtual void swiglu_forward(float* out /*[N,F]*/, const float* gu /*[N,2F]*/, int N, int F) = 0;
  // dgu written (both halves)
  virtual void swiglu_backward(float* dgu /*[N,2F]*/, const float* gu /*[N,2F]*/,
                               const float* dout /*[N,F]*/, int N, int F) = 0;

  // ---- elementwise -------------------------------------------------------------------------
  virtual void add(float* out, const float* a, const float* b, size_t n) = 0;  // out = a + b
  virtual void add_inplace(float* acc, const float* x, size_t n) = 0;          // acc += x
  virtual void scale_inplace(float* x, float s, size_t n) = 0;                 // x *= s

  // ---- vocab-parallel softmax cross-entropy ------------------------------------------------
  // The logits of a TP rank cover vocabulary columns [vocab_start, vocab_start+Vl); columns at
  // or beyond `vocab_size` (padding) are ignored. Between the steps the model all-reduces
  // row_max (MAX) and sum_exp/target_logit (SUM) over TP; with tp=1 those are no-ops.
  // 1) row_max[n] = max over this rank's valid columns (-inf if none).
  virtual void xent_row_max(float* row_max /*[N]*/, const float* logits /*[N,Vl]*/, int N, int Vl,
                            int vocab_start, int vocab_size) = 0;
  // 2) sum_exp[n] = sum_j exp(logits[n,j] - row_max[n]); target_logit[n] = logits[n, target-start]
  //    if this rank owns targets[n], else 0.
  virtual void xent_partial_sums(float* sum_exp /*[N]*/, float* target_logit /*[N]*/,
                                 const float* logits /*[N,Vl]*/, const float* row_max /*[N]*/,
                                 const int32_t* targets /*[N]*/, int N, int Vl, int vocab_start,
                                 int vocab_size) = 0;
  // 3) losses[n] = log(sum_exp[n]) + row_max[n] - target_logit[n]
  virtual void xent_loss(float* losses /*[N]*/, const float* row_max, const float* sum_exp,
                         const float* target_logit, int N) = 0;
  // 4) dlogits[n,j] = (softmax[n,j] - [j == target]) * dloss (written in place of logits is
  //    allowed: dlogits may equal logits). Padded columns get 0.
  virtual void xent_backward(float* dlogits /*[N,Vl]*/, const float* logits /*[N,Vl]*/,
                             const float* row_max, const float* sum_exp,
                             const int32_t* targets /*[N]*/, float dloss, int N, int Vl,
                             int vocab_start, int vocab_size) = 0;

  // ---- optimizer ----------------------------------------------------------------------------
  // sum of squares of x[0..n) in double (for the global grad norm).
  virtual double sum_squares(const float* x, size_t n) = 0;
  // AdamW with decoupled weight decay on a flat range. grad is multiplied by grad_scale first
  // (clipping and averaging). step is 1-based (bias correction).
  virtual void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay,
                            float grad_scale, int step) = 0;

 protected:
  // The backend's own allocation: `bytes` zero-filled bytes (a unique pointer even for 0);
  // alloc() and free_memory() wrap these with the accounting.
  virtual void* allocate_bytes(size_t bytes) = 0;
  virtual void release_bytes(void* p) = 0;

 private:
  MemoryAccount account_;
};

// The CPU backend (OpenMP + oneDNN GEMMs) at the ISA level this CPU runs, or SHARDLM_ISA forces
// (kernels/cpu/isa.h). One per process.
KernelBackend& cpu_backend();

}  // namespace shardlm
