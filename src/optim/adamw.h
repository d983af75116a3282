// AdamW over a rank's flat parameter buffer (or, with ZeRO-1, over its shard [begin, end) of
// it): decoupled weight decay on tensors of rank >= 2 only, global-norm clipping applied as a
// gradient scale, and the learning-rate schedule (linear warm-up, cosine decay to a floor).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"
#include "model/param_layout.h"

namespace shardlm {

struct OptimizerConfig {
  float lr = 6e-4f;      // peak learning rate
  float min_lr = 6e-5f;  // floor of the cosine decay
  int warmup_steps = 0;  // linear warm-up steps
  int total_steps = 1;   // schedule length (cosine reaches min_lr here)
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;  // global-norm clip; <= 0 disables
};

// Learning rate for 0-based step: lr*(s+1)/warmup during warm-up, then cosine from lr to
// min_lr over [warmup, total_steps); min_lr after.
float learning_rate(const OptimizerConfig& cfg, int step);

// Multiplier that brings the global gradient norm down to grad_clip (PyTorch's
// clip_grad_norm_: clip / (norm + 1e-6), only when norm > clip).
float clip_scale(const OptimizerConfig& cfg, double grad_norm);

class AdamW {
 public:
  // Updates elements [begin, end) of the flat buffers described by `layout`; moments are
  // held for that range only.
  AdamW(const OptimizerConfig& cfg, const ParamLayout& layout, KernelBackend& backend, size_t begin,
        size_t end);
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // One update at 0-based `step` (bias correction uses step+1). `params` and `grads` point at
  // the element `begin` of the flat buffers; grads are multiplied by grad_scale first.
  void update(float* params, const float* grads, int step, float grad_scale);

  float* exp_avg() { return m_; }     // [end - begin]
  float* exp_avg_sq() { return v_; }  // [end - begin]
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  const OptimizerConfig& config() const { return cfg_; }

 private:
  OptimizerConfig cfg_;
  const ParamLayout& layout_;
  KernelBackend& be_;
  size_t begin_, end_;
  float* m_ = nullptr;
  float* v_ = nullptr;
};

}  // namespace shardlm
