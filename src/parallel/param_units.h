// Parameter units: contiguous flat ranges of a stage's parameters that ZeRO-2/3 handle as one
// (one per transformer layer, as Megatron-Core's and torchtitan's FSDP wrap each block). The
// stage tells a ParamUnitHooks before it reads a unit's parameters and after it is done with
// them; the schedule (parallel/pipeline.h) knows nothing of this, and the hooks know nothing
// of the model (data_parallel.h implements them).
#pragma once

#include <cstddef>

namespace shardlm {

struct FlatRange {
  size_t begin = 0, end = 0;  // elements of the flat buffer
  size_t size() const { return end - begin; }
};

// Elements of a flat range held somewhere else than at their flat offset (a unit in a
// FlatBuffer's window, parallel/flat_buffer.h): flat element o is data[o - origin].
struct FlatSpan {
  float* data = nullptr;
  size_t origin = 0;
  float* at(size_t o) const { return data + (o - origin); }
};

class ParamUnitHooks {
 public:
  virtual ~ParamUnitHooks() = default;
  // Forward or backward is about to read unit u's parameters (ZeRO-3 gathers them).
  virtual void before_use(int u) = 0;
  // Forward is done with unit u (ZeRO-3 drops the other ranks' parameters again).
  virtual void after_forward(int u) = 0;
  // Backward has added this micro-batch's gradients of unit u (ZeRO-2/3 reduce-scatter them
  // into the owners' shards and drop the rest; ZeRO-3 drops the gathered parameters).
  virtual void after_backward(int u) = 0;
};

}  // namespace shardlm
