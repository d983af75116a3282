#include "optim/adamw.h"

#include <algorithm>
#include <cmath>

namespace shardlm {

float learning_rate(const OptimizerConfig& cfg, int step) {
  if (step < cfg.warmup_steps)
    return cfg.lr * static_cast<float>(step + 1) / static_cast<float>(cfg.warmup_steps);
  if (step >= cfg.total_steps) return cfg.min_lr;
  const double ratio = static_cast<double>(step - cfg.warmup_steps) /
                       static_cast<double>(cfg.total_steps - cfg.warmup_steps);
  const double coeff = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return static_cast<float>(cfg.min_lr + coeff * (cfg.lr - cfg.min_lr));
}

float clip_scale(const OptimizerConfig& cfg, double grad_norm) {
  if (cfg.grad_clip <= 0.0f || grad_norm <= cfg.grad_clip) return 1.0f;
  return static_cast<float>(cfg.grad_clip / (grad_norm + 1e-6));
}

AdamW::AdamW(const OptimizerConfig& cfg, const ParamLayout& layout, KernelBackend& backend,
             size_t begin, size_t end)
    : cfg_(cfg), layout_(layout), be_(backend), begin_(begin), end_(end) {
  m_ = be_.alloc_floats(end - begin, MemoryRole::Optimizer);
  v_ = be_.alloc_floats(end - begin, MemoryRole::Optimizer);
}

AdamW::~AdamW() {
  be_.free_memory(m_);
  be_.free_memory(v_);
}

void AdamW::update(float* params, const float* grads, int step, float grad_scale) {
  const float lr = learning_rate(cfg_, step);
  // One kernel call per tensor piece inside [begin, end): weight decay is per tensor.
  for (const auto& view : layout_.views()) {
    const size_t lo = std::max(begin_, view.flat_offset);
    const size_t hi = std::min(end_, view.flat_offset + view.numel);
    if (lo >= hi) continue;
    const size_t k = lo - begin_;
    be_.adamw_update(params + k, grads + k, m_ + k, v_ + k, hi - lo, lr, cfg_.beta1, cfg_.beta2,
                     cfg_.eps, view.weight_decay ? cfg_.weight_decay : 0.0f, grad_scale, step + 1);
  }
}

}  // namespace shardlm
