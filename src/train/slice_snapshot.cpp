#include "train/slice_snapshot.h"

#include <cstring>

#include "checkpoint/rect.h"

namespace shardlm {

namespace {
size_t slice_bytes(const CheckpointSlice& s) {
  return static_cast<size_t>(Rect{s.offset, s.count}.numel()) * dtype_size(s.dtype);
}

size_t total_bytes(const std::vector<CheckpointSlice>& slices) {
  size_t total = 0;
  for (const CheckpointSlice& s : slices) total += slice_bytes(s);
  return total;
}
}  // namespace

void SliceSnapshot::grow(size_t bytes) {
  if (bytes <= capacity_) return;
  // new[] without value-initialisation: reserve_for or the first copy touches the pages.
  buffer_.reset(new std::byte[bytes]);
  capacity_ = bytes;
}

void SliceSnapshot::reserve_for(const std::vector<CheckpointSlice>& slices) {
  grow(total_bytes(slices));
  // A rank that saves nothing (a data-parallel replica) has no buffer: memset may not take null.
  if (capacity_ != 0) std::memset(buffer_.get(), 0, capacity_);
}

std::vector<CheckpointSlice> SliceSnapshot::place(std::vector<CheckpointSlice> slices) {
  grow(total_bytes(slices));
  copies_.clear();
  std::byte* at = buffer_.get();
  for (CheckpointSlice& s : slices) {
    const size_t n = slice_bytes(s);
    if (n == 0) continue;
    copies_.push_back({s.data, at, n});
    s.data = at;
    at += n;
  }
  return slices;
}

void SliceSnapshot::copy(KernelBackend& be) const {
  for (const Copy& c : copies_) be.copy_to_host(c.to, c.from, c.bytes);
}

}  // namespace shardlm
