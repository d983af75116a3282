#include "convert/file_shape.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace shardlm {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int64_t checked_numel(const std::vector<int64_t>& shape, uint64_t max_numel,
                      const std::string& field) {
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; }))
    fail(field + ": shape " + shape_text(shape) + " has a negative dimension");
  // A zero dimension makes no elements, but the other dimensions' product must still fit in
  // int64: numel() multiplies in order, so [2^59, 2^16, 0] would overflow before the 0.
  const bool empty = std::find(shape.begin(), shape.end(), 0) != shape.end();
  const uint64_t int64_max = std::numeric_limits<int64_t>::max();
  const uint64_t limit = empty ? int64_max : std::min<uint64_t>(max_numel, int64_max);
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) continue;
    if (static_cast<uint64_t>(d) > limit / n)
      fail(field + ": shape " + shape_text(shape) +
           (empty ? " has dimensions whose product overflows int64"
                  : " has more elements than the file's " + std::to_string(max_numel) +
                        " bytes can hold"));
    n *= static_cast<uint64_t>(d);
  }
  return empty ? 0 : static_cast<int64_t>(n);
}

}  // namespace shardlm
