#include "parallel/flat_buffer.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/backend.h"

namespace shardlm {

namespace {

std::string range_text(size_t o, size_t n) {
  return "[" + std::to_string(o) + ", " + std::to_string(o + n) + ")";
}

// The flat ranges stored in place: everything outside the windowed units, and `kept`; sorted,
// disjoint and merged where they touch.
std::vector<FlatRange> in_place_ranges(size_t size, const FlatStorage& s) {
  std::vector<FlatRange> parts;
  size_t at = 0;
  for (const FlatRange& u : s.windowed) {
    SHARDLM_CHECK(at <= u.begin && u.begin <= u.end && u.end <= size,
                  "windowed units must be sorted, disjoint and inside the buffer");
    if (u.begin > at) parts.push_back({at, u.begin});
    at = u.end;
  }
  if (at < size) parts.push_back({at, size});
  if (s.kept.size() != 0) {
    SHARDLM_CHECK(s.kept.end <= size, "the kept range is outside the buffer");
    parts.push_back(s.kept);
  }
  std::sort(parts.begin(), parts.end(),
            [](const FlatRange& a, const FlatRange& b) { return a.begin < b.begin; });
  std::vector<FlatRange> merged;
  for (const FlatRange& r : parts) {
    if (!merged.empty() && r.begin <= merged.back().end)
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  return merged;
}

size_t largest_unit(const FlatStorage& s) {
  size_t most = 0;
  for (const FlatRange& u : s.windowed) most = std::max(most, u.size());
  return most;
}

}  // namespace

size_t FlatBuffer::allocated_elements(size_t size, const FlatStorage& storage) {
  size_t n = largest_unit(storage);
  for (const FlatRange& r : in_place_ranges(size, storage)) n += r.size();
  return n;
}

FlatBuffer::FlatBuffer(KernelBackend& backend, size_t size, MemoryRole role, FlatStorage storage)
    : be_(backend), size_(size), storage_(std::move(storage)) {
  size_t at = 0;
  for (const FlatRange& r : in_place_ranges(size_, storage_)) {
    segments_.push_back({r, at});
    at += r.size();
  }
  window_size_ = largest_unit(storage_);
  allocated_ = at + window_size_;
  data_ = be_.alloc_floats(allocated_, role);
  window_ = data_ + at;
}

FlatBuffer::~FlatBuffer() {
  be_.free_memory(data_);
}

const FlatBuffer::Segment* FlatBuffer::segment_of(size_t o) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), o,
                             [](size_t x, const Segment& s) { return x < s.range.begin; });
  if (it == segments_.begin()) return nullptr;
  --it;
  return o < it->range.end ? &*it : nullptr;
}

bool FlatBuffer::in_place(size_t o, size_t n) const {
  if (n == 0) return o <= size_;
  const Segment* s = segment_of(o);
  return s != nullptr && o + n <= s->range.end;
}

float* FlatBuffer::at(size_t o, size_t n) {
  return const_cast<float*>(static_cast<const FlatBuffer&>(*this).at(o, n));
}

const float* FlatBuffer::at(size_t o, size_t n) const {
  if (!in_place(o, n))
    fail("flat elements " + range_text(o, n) + " of a buffer of " + std::to_string(size_) +
         " are not held in place (ZeRO keeps a layer there only while it is in use)");
  if (n == 0) return data_;
  const Segment* s = segment_of(o);
  return data_ + s->at + (o - s->range.begin);
}

const FlatRange& FlatBuffer::windowed_unit(int u) const {
  SHARDLM_CHECK(u >= 0 && static_cast<size_t>(u) < storage_.windowed.size(),
                "unit " + std::to_string(u) + " is not one of the buffer's " +
                    std::to_string(storage_.windowed.size()) + " units");
  return storage_.windowed[static_cast<size_t>(u)];
}

FlatSpan FlatBuffer::unit(int u) {
  if (!windowed()) return {data_, 0};
  const FlatRange& r = windowed_unit(u);
  SHARDLM_CHECK(open_ == u,
                "unit " + std::to_string(u) + " is used while " +
                    (open_ < 0 ? std::string("no unit") : "unit " + std::to_string(open_)) +
                    " is in the window");
  return {window_, r.begin};
}

void FlatBuffer::open(int u) {
  windowed_unit(u);
  SHARDLM_CHECK(open_ < 0 || open_ == u, "unit " + std::to_string(u) + " opened while unit " +
                                             std::to_string(open_) + " is in the window");
  open_ = u;
}

void FlatBuffer::close() {
  open_ = -1;
}

void FlatBuffer::fill_zero() {
  be_.fill_zero(data_, allocated_);
}

void FlatBuffer::store(size_t o, const float* host, size_t n) {
  for (const Segment& s : segments_) {
    const size_t lo = std::max(o, s.range.begin), hi = std::min(o + n, s.range.end);
    if (lo < hi)
      be_.copy_from_host(data_ + s.at + (lo - s.range.begin), host + (lo - o),
                         (hi - lo) * sizeof(float));
  }
}

}  // namespace shardlm
