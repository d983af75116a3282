// Host copies of what a checkpoint save writes (--async-save): the training thread copies every
// slice out of backend memory (a memcpy on the CPU, a device-to-host copy through the backend on
// a GPU) and the save then writes the copies while training changes the originals. The buffer
// is kept from one save to the next, so a save touches no fresh pages and the memory it doubles
// is held once (the memory preflight counts it).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "kernels/backend.h"

namespace shardlm {

class SliceSnapshot {
 public:
  // Copies the data of `slices` (memory of `be`) into this snapshot and returns them pointing
  // at the copies, valid until the next take().
  std::vector<CheckpointSlice> take(KernelBackend& be, std::vector<CheckpointSlice> slices);
  // Allocates and touches room for `slices` now (at start), so that the first save does not
  // pay for the page faults.
  void reserve_for(const std::vector<CheckpointSlice>& slices);
  size_t bytes() const { return capacity_; }

 private:
  void grow(size_t bytes);
  std::unique_ptr<std::byte[]> buffer_;
  size_t capacity_ = 0;
};

}  // namespace shardlm
