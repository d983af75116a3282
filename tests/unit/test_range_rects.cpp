// range_to_rects: a 1-D range of a row-major block (a ZeRO-1 partition of the flat buffer cut
// by a tensor) as rectangles of the global tensor, whose row-major contents concatenate to the
// range. Checked exhaustively on small blocks against element-by-element enumeration.
#include <gtest/gtest.h>

#include <vector>

#include "train/checkpointing.h"

using namespace shardlm;

namespace {

// Global linear indices of the elements of `r` in row-major order (global shape `g`).
std::vector<int64_t> elements(const Rect& r, const std::vector<int64_t>& g) {
  std::vector<int64_t> out;
  const size_t n = g.size();
  std::vector<int64_t> idx(n, 0);
  for (int64_t k = 0; k < r.numel(); ++k) {
    int64_t lin = 0;
    for (size_t d = 0; d < n; ++d) lin = lin * g[d] + r.offset[d] + idx[d];
    out.push_back(lin);
    for (size_t d = n; d-- > 0;) {
      if (++idx[d] < r.count[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace

TEST(RangeToRects, ConcatenationEqualsTheRangeForEverySubrange) {
  const std::vector<int64_t> global = {5, 4, 3, 6};
  const Rect block{{1, 1, 0, 2}, {3, 2, 3, 4}};  // a TP-style block inside the global tensor
  const std::vector<int64_t> all = elements(block, global);
  const int64_t n = block.numel();
  for (int64_t a = 0; a <= n; ++a) {
    for (int64_t b = a; b <= n; ++b) {
      std::vector<int64_t> got;
      const std::vector<Rect> rects = range_to_rects(block, a, b);
      for (const Rect& r : rects) {
        ASSERT_GT(r.numel(), 0);
        const auto e = elements(r, global);
        got.insert(got.end(), e.begin(), e.end());
      }
      ASSERT_EQ(got, std::vector<int64_t>(all.begin() + a, all.begin() + b))
          << "range [" << a << ", " << b << ")";
      // At most two partial pieces per dimension plus the full middle.
      ASSERT_LE(rects.size(), 2 * block.count.size() - 1);
    }
  }
}

TEST(RangeToRects, OneDimensional) {
  const Rect block{{10}, {8}};
  const auto rects = range_to_rects(block, 2, 7);
  ASSERT_EQ(rects.size(), 1u);
  EXPECT_EQ(rects[0].offset, std::vector<int64_t>{12});
  EXPECT_EQ(rects[0].count, std::vector<int64_t>{5});
  EXPECT_TRUE(range_to_rects(block, 3, 3).empty());
}
