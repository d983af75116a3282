#include "train/flops.h"

namespace shardlm {

double model_flops_per_token(const ModelConfig& m, int T) {
  const double matmul_params =
      static_cast<double>(m.num_parameters()) - static_cast<double>(m.max_seq_len) * m.n_embd;
  return 6.0 * matmul_params + 6.0 * m.n_layer * static_cast<double>(T) * m.n_embd;
}

}  // namespace shardlm
