#include "checkpoint/rect.h"

#include <algorithm>
#include <cstring>

namespace shardlm {

int64_t Rect::numel() const {
  int64_t n = 1;
  for (int64_t c : count) n *= c;
  return n;
}

std::optional<Rect> intersect(const Rect& a, const Rect& b) {
  Rect r;
  for (size_t d = 0; d < a.offset.size(); ++d) {
    const int64_t lo = std::max(a.offset[d], b.offset[d]);
    const int64_t hi = std::min(a.offset[d] + a.count[d], b.offset[d] + b.count[d]);
    if (hi <= lo) return std::nullopt;
    r.offset.push_back(lo);
    r.count.push_back(hi - lo);
  }
  return r;
}

std::vector<Rect> subtract(const Rect& a, const Rect& b) {
  if (!intersect(a, b)) return {a};
  // Peel off the parts of `rest` below and above b one dimension at a time; what is left at the
  // end is the intersection.
  std::vector<Rect> pieces;
  Rect rest = a;
  for (size_t d = 0; d < a.offset.size(); ++d) {
    const int64_t lo = rest.offset[d], hi = rest.offset[d] + rest.count[d];
    const int64_t b_lo = b.offset[d], b_hi = b.offset[d] + b.count[d];
    if (lo < b_lo) {
      Rect below = rest;
      below.count[d] = b_lo - lo;
      pieces.push_back(below);
    }
    if (hi > b_hi) {
      Rect above = rest;
      above.offset[d] = b_hi;
      above.count[d] = hi - b_hi;
      pieces.push_back(above);
    }
    rest.offset[d] = std::max(lo, b_lo);
    rest.count[d] = std::min(hi, b_hi) - rest.offset[d];
  }
  return pieces;
}

void for_each_block(const Rect& whole, int64_t max_elements,
                    const std::function<void(const Rect&)>& fn) {
  const size_t ndim = whole.count.size();
  if (whole.numel() == 0) return;
  // Split along the outermost dimension `split` whose inner rows still fit the budget.
  size_t split = ndim - 1;
  int64_t inner = 1;  // elements of one step along `split`
  while (split > 0 && inner * whole.count[split] <= max_elements) {
    inner *= whole.count[split];
    --split;
  }
  if (inner * whole.count[split] <= max_elements && split == 0) {
    fn(whole);
    return;
  }
  const int64_t step = std::max<int64_t>(1, max_elements / inner);
  std::vector<int64_t> index(split, 0);  // odometer over the dimensions outside `split`
  while (true) {
    for (int64_t j = 0; j < whole.count[split]; j += step) {
      Rect block = whole;
      for (size_t d = 0; d < split; ++d) {
        block.offset[d] = whole.offset[d] + index[d];
        block.count[d] = 1;
      }
      block.offset[split] = whole.offset[split] + j;
      block.count[split] = std::min(step, whole.count[split] - j);
      fn(block);
    }
    size_t d = split;
    while (d > 0 && ++index[d - 1] == whole.count[d - 1]) index[--d] = 0;
    if (d == 0) return;
  }
}

bool contiguous_within(const Rect& inner, const Rect& outer) {
  const size_t ndim = inner.count.size();
  size_t split = 0;
  while (split + 1 < ndim && inner.count[split] == 1) ++split;
  for (size_t d = split + 1; d < ndim; ++d)
    if (inner.count[d] != outer.count[d]) return false;
  return true;
}

int64_t flat_index(const Rect& rect, const std::vector<int64_t>& at) {
  int64_t index = 0;
  for (size_t d = 0; d < at.size(); ++d) index = index * rect.count[d] + (at[d] - rect.offset[d]);
  return index;
}

void copy_region(const float* src, const Rect& src_rect, float* dst, const Rect& dst_rect,
                 const Rect& region) {
  const size_t ndim = region.count.size();
  if (region.numel() == 0) return;
  // Row-major strides of both layouts.
  std::vector<int64_t> src_stride(ndim, 1), dst_stride(ndim, 1);
  for (size_t d = ndim - 1; d > 0; --d) {
    src_stride[d - 1] = src_stride[d] * src_rect.count[d];
    dst_stride[d - 1] = dst_stride[d] * dst_rect.count[d];
  }
  const int64_t row = region.count[ndim - 1];
  std::vector<int64_t> index(ndim - 1, 0);  // odometer over all but the innermost dimension
  while (true) {
    int64_t s = 0, t = 0;
    for (size_t d = 0; d < ndim; ++d) {
      const int64_t g = region.offset[d] + (d + 1 < ndim ? index[d] : 0);
      s += (g - src_rect.offset[d]) * src_stride[d];
      t += (g - dst_rect.offset[d]) * dst_stride[d];
    }
    std::memcpy(dst + t, src + s, static_cast<size_t>(row) * sizeof(float));
    size_t d = ndim - 1;
    while (d > 0 && ++index[d - 1] == region.count[d - 1]) index[--d] = 0;
    if (d == 0) return;
  }
}

std::string shape_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace shardlm
