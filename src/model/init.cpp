#include "model/init.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/hash.h"

namespace shardlm {

float counter_normal(uint64_t key, uint64_t index) {
  // Box-Muller on two 53-bit uniforms derived from (key, index).
  const uint64_t a = splitmix64(key ^ splitmix64(2 * index));
  const uint64_t b = splitmix64(key ^ splitmix64(2 * index + 1));
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * (1.0 / 9007199254740992.0);  // (0,1]
  const double u2 = static_cast<double>(b >> 11) * (1.0 / 9007199254740992.0);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

void fill_constant(float* out, const TensorView& view, float value) {
  for (size_t i = 0; i < view.numel; ++i) out[i] = value;
}

void fill_counter_normal(float* out, const TensorView& view, uint64_t seed, float std,
                         int64_t zero_rows_from) {
  const uint64_t key = splitmix64(seed) ^ fnv1a64(view.name.data(), view.name.size());
  // Walk the local block in row-major order, tracking each element's global linear index.
  const size_t rank = view.local_shape.size();
  std::vector<int64_t> idx(rank, 0);
  for (size_t i = 0; i < view.numel; ++i) {
    uint64_t global = 0;
    for (size_t d = 0; d < rank; ++d)
      global = global * static_cast<uint64_t>(view.global_shape[d]) +
               static_cast<uint64_t>(view.offset[d] + idx[d]);
    const bool zero_row = zero_rows_from >= 0 && view.offset[0] + idx[0] >= zero_rows_from;
    out[i] = zero_row ? 0.0f : std * counter_normal(key, global);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < view.local_shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace shardlm
