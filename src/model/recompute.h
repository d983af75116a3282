// Activation recomputation (--recompute), one mechanism for every family. A block's forward
// writes its activations into buffers handed out by BlockActivations; what the mode keeps
// gets a buffer per layer and micro-batch slot, what it drops gets one buffer shared by all
// layers and slots, which the stage refills in backward just before the layer's backward:
//   none       keeps everything;
//   selective  drops the cheap, memory-heavy parts: the attention internals (probabilities /
//              statistics and the attention output, recomputed from the kept qkv) and the MLP
//              nonlinearity's output (recomputed from its kept input);
//   full       keeps only each block's input and re-runs the whole block forward.
// The recomputation runs the same kernels on the same inputs, so losses and gradients are
// bit-identical to `none` on a deterministic backend (the CPU backend).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>

namespace shardlm {

enum class Recompute { None, Selective, Full };

// "none" | "selective" | "full"; throws naming the value otherwise.
Recompute parse_recompute(const std::string& text);
const char* recompute_name(Recompute mode);

// What a block activation is, for the keep-or-recompute decision.
enum class ActivationRole {
  Attention,     // attention internals: probabilities/statistics, attention output
  Nonlinearity,  // the MLP nonlinearity's output (GELU, SwiGLU)
  Internal,      // every other block-internal tensor (norm outputs, projections, residual)
};

// Whether `mode` keeps activations of `role` for backward (otherwise backward recomputes).
bool keeps(Recompute mode, ActivationRole role);

// Before a layer's backward: re-runs the block forward (full) or only the dropped parts
// (selective); nothing with none.
void recompute_block(Recompute mode, const std::function<void()>& full_forward,
                     const std::function<void()>& selective);

class BlockActivations {
 public:
  using Alloc = std::function<float*(size_t n)>;  // zero-filled backend floats, owned elsewhere
  BlockActivations(Recompute mode, Alloc alloc) : mode_(mode), alloc_(std::move(alloc)) {}

  Recompute mode() const { return mode_; }
  // A buffer of n floats for one layer of one slot: its own when the mode keeps `role`, else
  // the one buffer called `name` shared by every layer and slot.
  float* get(const std::string& name, ActivationRole role, size_t n);

  // Bytes of the buffers kept per layer and slot (all of them), and of the shared ones.
  size_t kept_bytes() const { return kept_bytes_; }
  size_t shared_bytes() const { return shared_bytes_; }

 private:
  Recompute mode_;
  Alloc alloc_;
  std::map<std::string, std::pair<float*, size_t>> shared_;  // name -> buffer, elements
  size_t kept_bytes_ = 0, shared_bytes_ = 0;
};

}  // namespace shardlm
