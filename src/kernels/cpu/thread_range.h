// Static, contiguous work splits for OpenMP threads. Kernels that reduce across rows give each
// thread one contiguous range and combine the per-thread partials in thread order, so results
// are bit-identical from run to run for a fixed thread count.
#pragma once

#include "kernels/cpu/isa_namespace.h"

#include <cstddef>

namespace shardlm::cpu {
inline namespace SHARDLM_CPU_ISA {

struct IndexRange {
  size_t begin;
  size_t end;
};

// Part `part` of `parts` near-equal contiguous pieces of [0, n). Boundaries are multiples of
// `align` (except the last end), so vector loops start on aligned elements.
inline IndexRange split_range(size_t n, int part, int parts, size_t align = 1) {
  const size_t blocks = (n + align - 1) / align;
  const size_t begin_block = blocks * static_cast<size_t>(part) / static_cast<size_t>(parts);
  const size_t end_block = blocks * static_cast<size_t>(part + 1) / static_cast<size_t>(parts);
  const size_t begin = begin_block * align < n ? begin_block * align : n;
  const size_t end = end_block * align < n ? end_block * align : n;
  return {begin, end};
}

}  // namespace SHARDLM_CPU_ISA
}  // namespace shardlm::cpu
