#include "model/init.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/hash.h"

namespace shardlm {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

float counter_normal(uint64_t key, uint64_t index) {
  // Box-Muller on two 53-bit uniforms derived from (key, index).
  const uint64_t a = splitmix64(key ^ splitmix64(2 * index));
  const uint64_t b = splitmix64(key ^ splitmix64(2 * index + 1));
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * (1.0 / 9007199254740992.0);  // (0,1]
  const double u2 = static_cast<double>(b >> 11) * (1.0 / 9007199254740992.0);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

void fill_gpt2_init(float* out, const TensorView& view, const ModelConfig& cfg, uint64_t seed) {
  const std::string& name = view.name;
  const bool is_bias = ends_with(name, ".bias");
  const bool is_ln_weight =
      ends_with(name, "ln_1.weight") || ends_with(name, "ln_2.weight") || name == "ln_f.weight";
  if (is_bias) {
    for (size_t i = 0; i < view.numel; ++i) out[i] = 0.0f;
    return;
  }
  if (is_ln_weight) {
    for (size_t i = 0; i < view.numel; ++i) out[i] = 1.0f;
    return;
  }
  const bool residual_proj =
      ends_with(name, "attn.c_proj.weight") || ends_with(name, "mlp.c_proj.weight");
  const float std =
      residual_proj ? 0.02f / std::sqrt(2.0f * static_cast<float>(cfg.n_layer)) : 0.02f;
  const uint64_t key = splitmix64(seed) ^ fnv1a64(name.data(), name.size());

  // Walk the local block in row-major order, tracking each element's global linear index.
  const size_t rank = view.local_shape.size();
  std::vector<int64_t> idx(rank, 0);
  for (size_t i = 0; i < view.numel; ++i) {
    uint64_t global = 0;
    for (size_t d = 0; d < rank; ++d)
      global = global * static_cast<uint64_t>(view.global_shape[d]) +
               static_cast<uint64_t>(view.offset[d] + idx[d]);
    const bool padded_vocab_row = name == "wte" && view.offset[0] + idx[0] >= cfg.vocab_size;
    out[i] = padded_vocab_row ? 0.0f : std * counter_normal(key, global);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < view.local_shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace shardlm
