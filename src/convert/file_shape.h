// Tensor shapes read from another engine's file (safetensors, GGUF): a corrupt or hostile
// shape must be refused before its element count overflows int64 or sizes an allocation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

// The element count of `shape`; refused naming `field` when a dimension is negative or the
// count exceeds `max_numel` (what the file could hold: its size in bytes bounds the elements
// of every type shardlm reads, none smaller than a byte). A zero dimension gives 0.
int64_t checked_numel(const std::vector<int64_t>& shape, uint64_t max_numel,
                      const std::string& field);

}  // namespace shardlm
