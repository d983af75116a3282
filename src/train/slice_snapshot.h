// Host copies of what a checkpoint save writes (--async-save), so that training may change the
// originals while the copies are written. place() points the slices at this snapshot's buffer
// and remembers where their data is; copy() then copies it out of backend memory (a memcpy on
// the CPU, a device-to-host copy through the backend on a GPU), on the training thread or on
// the writer thread before it writes. The buffer is kept from one save to the next and touched
// at start (reserve_for), so a save faults in no pages; the memory preflight counts it.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "kernels/backend.h"

namespace shardlm {

class SliceSnapshot {
 public:
  // `slices` (data in backend memory) pointing at their places in this snapshot, valid until
  // the next place(); the data is copied there by copy().
  std::vector<CheckpointSlice> place(std::vector<CheckpointSlice> slices);
  // Copies the data of the slices placed last from backend memory `be`, which must not change
  // meanwhile.
  void copy(KernelBackend& be) const;
  // Allocates and touches room for `slices` now, so that the first save does not pay for it.
  void reserve_for(const std::vector<CheckpointSlice>& slices);

 private:
  struct Copy {
    const void* from;  // backend memory
    void* to;          // in buffer_
    size_t bytes;
  };
  void grow(size_t bytes);
  std::unique_ptr<std::byte[]> buffer_;
  size_t capacity_ = 0;
  std::vector<Copy> copies_;
};

}  // namespace shardlm
