// Rectangles of N-D row-major tensors: the geometry behind storing shards and reading any other
// partition of a tensor back (intersection, covering, bounded streaming, strided copies).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shardlm {

// [offset, offset + count) in every dimension.
struct Rect {
  std::vector<int64_t> offset, count;
  int64_t numel() const;
};

std::optional<Rect> intersect(const Rect& a, const Rect& b);  // nullopt when they share nothing
// a minus b as disjoint rectangles (b may reach outside a).
std::vector<Rect> subtract(const Rect& a, const Rect& b);

// Splits `whole` into consecutive blocks of at most max_elements elements (at least one row of
// the innermost dimension), each contiguous in whole's row-major order, and calls fn on each in
// order. Block coordinates are in whole's frame, so a streaming checksum over the blocks equals
// the checksum of the whole rectangle.
void for_each_block(const Rect& whole, int64_t max_elements,
                    const std::function<void(const Rect&)>& fn);

// Whether `inner` (inside `outer`) is one contiguous run of outer's row-major order: extent 1
// before some dimension, outer's full extent after it.
bool contiguous_within(const Rect& inner, const Rect& outer);
// Row-major position of the global coordinates `at` inside `rect`.
int64_t flat_index(const Rect& rect, const std::vector<int64_t>& at);

// Copies `region` from src (row-major over src_rect) into dst (row-major over dst_rect);
// region must lie inside both.
void copy_region(const float* src, const Rect& src_rect, float* dst, const Rect& dst_rect,
                 const Rect& region);

std::string shape_string(const std::vector<int64_t>& dims);  // "[2, 3]"

}  // namespace shardlm
