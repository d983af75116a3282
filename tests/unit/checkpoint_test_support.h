// Shared by the checkpoint tests (unit and MPI): tensors whose every element is a distinct,
// exactly representable function of its global position, so any misplaced element shows.
#pragma once

#include <cstdint>
#include <vector>

namespace shardlm::testing {

// seed in [1, 9], tensors under 7M elements: seed * 1e6 + flat index stays below 2^24, so every
// value is an exact float and two positions (or two seeds) never share one.
inline float element_value(int seed, int64_t flat_index) {
  return static_cast<float>(seed * 1000000 + flat_index);
}

// The rectangle (offset, count) of the seeded tensor of `global_shape`, row-major.
inline std::vector<float> make_block(int seed, const std::vector<int64_t>& global_shape,
                                     const std::vector<int64_t>& offset,
                                     const std::vector<int64_t>& count) {
  const size_t ndim = global_shape.size();
  int64_t n = 1;
  for (int64_t c : count) n *= c;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(n));
  std::vector<int64_t> index(ndim, 0);  // position inside the rectangle
  for (int64_t i = 0; i < n; ++i) {
    int64_t flat = 0;
    for (size_t d = 0; d < ndim; ++d) flat = flat * global_shape[d] + offset[d] + index[d];
    out.push_back(element_value(seed, flat));
    for (size_t d = ndim; d-- > 0;) {
      if (++index[d] < count[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

inline std::vector<float> make_tensor(int seed, const std::vector<int64_t>& global_shape) {
  return make_block(seed, global_shape, std::vector<int64_t>(global_shape.size(), 0), global_shape);
}

}  // namespace shardlm::testing
