// One flat buffer of a pipeline stage — its parameters or its gradients, element o at the view
// table's flat offset o — stored as its ZeRO stage needs (GradientSync::storage decides):
//   full      every element in place (ZeRO 0 and 1, ZeRO-2's parameters);
//   windowed  in place only what lies outside the layer units or inside `kept`, plus one
//             window as large as the largest unit, which holds the one unit in use. ZeRO-3's
//             parameters keep their DP partition in place and gather a layer into the window
//             for its forward and its backward; ZeRO-2/3's gradients keep nothing of the units
//             in place and accumulate one layer's gradients in the window during its backward.
// So no ZeRO-2 rank allocates the full gradient buffer and no ZeRO-3 rank the full parameter
// buffer: the allocation is what the rank keeps (plan/memory_model.h counts the same elements).
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/memory_account.h"
#include "parallel/param_units.h"

namespace shardlm {

class KernelBackend;

struct FlatStorage {
  std::vector<FlatRange> windowed;  // units held in the window (sorted); empty: a full buffer
  FlatRange kept;                   // stored in place even where a windowed unit covers it
};

// A pipeline stage's two flat buffers (GradientSync::storage: what its ZeRO stage keeps).
struct StageStorage {
  FlatStorage params, grads;
};

class FlatBuffer {
 public:
  // `size` elements of flat index space, zero-filled, counted under `role`.
  FlatBuffer(KernelBackend& backend, size_t size, MemoryRole role, FlatStorage storage = {});
  ~FlatBuffer();
  FlatBuffer(const FlatBuffer&) = delete;
  FlatBuffer& operator=(const FlatBuffer&) = delete;

  // The elements such a buffer allocates: its in-place ranges and the window.
  static size_t allocated_elements(size_t size, const FlatStorage& storage);

  size_t size() const { return size_; }
  bool windowed() const { return !storage_.windowed.empty(); }
  // Whether elements [o, o+n) are stored in place, contiguously (every in-place part of one
  // tensor is: a tensor lies inside one unit or outside all of them).
  bool in_place(size_t o, size_t n) const;
  // Elements [o, o+n) in place; throws naming the range when they are not (part of a windowed
  // unit outside `kept`).
  float* at(size_t o, size_t n);
  const float* at(size_t o, size_t n) const;

  // Where unit u's elements are: in place (a full buffer) or, windowed, the window while u is
  // open. Windowed: open(u) gives the window to unit u (its holder fills it: a gather, or
  // gradients accumulating) until close(); opening while another unit is open is refused.
  FlatSpan unit(int u);
  void open(int u);
  void close();
  float* window() { return window_; }
  size_t window_size() const { return window_size_; }

  // Zeroes every element the buffer holds (in place and the window).
  void fill_zero();
  // host[0, n) into elements [o, o+n) where they are in place; parts held nowhere are
  // skipped (initialisation and checkpoint loading write whole tensors).
  void store(size_t o, const float* host, size_t n);

 private:
  struct Segment {
    FlatRange range;  // flat elements stored in place ...
    size_t at;        // ... from data_[at]
  };
  const Segment* segment_of(size_t o) const;
  const FlatRange& windowed_unit(int u) const;

  KernelBackend& be_;
  size_t size_;
  FlatStorage storage_;
  std::vector<Segment> segments_;  // sorted, disjoint
  float* data_ = nullptr;
  float* window_ = nullptr;
  size_t window_size_ = 0;
  size_t allocated_ = 0;  // in-place elements + the window
  int open_ = -1;         // the unit in the window, -1: none
};

}  // namespace shardlm
