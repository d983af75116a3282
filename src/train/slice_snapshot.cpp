#include "train/slice_snapshot.h"

#include "checkpoint/rect.h"

namespace shardlm {

namespace {
size_t slice_bytes(const CheckpointSlice& s) {
  return static_cast<size_t>(Rect{s.offset, s.count}.numel()) * dtype_size(s.dtype);
}
}  // namespace

std::vector<CheckpointSlice> SliceSnapshot::take(KernelBackend& be,
                                                 std::vector<CheckpointSlice> slices) {
  size_t total = 0;
  for (const CheckpointSlice& s : slices) total += slice_bytes(s);
  if (total > capacity_) {
    // new[] without value-initialisation: the pages are first touched by the copy below.
    buffer_.reset(new std::byte[total]);
    capacity_ = total;
  }
  std::byte* at = buffer_.get();
  for (CheckpointSlice& s : slices) {
    const size_t n = slice_bytes(s);
    if (n == 0) continue;
    be.copy_to_host(at, s.data, n);
    s.data = at;
    at += n;
  }
  return slices;
}

}  // namespace shardlm
