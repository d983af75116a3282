// The checkpoint slices of an import, streamed: each piece of an external tensor (the family's
// mapping, model/interchange.h) is one rectangle of its shardlm tensor, filled from the
// safetensors file block by block while the checkpoint writer writes it; what no piece covers
// (the padded vocabulary rows) is a rectangle of zeros. Memory stays at one block (2^20
// elements) for tensors kept in layout; a tensor whose layout moves elements (GPT-2's
// transposed Conv1D weights) is read whole once, while its slices are written.
#pragma once

#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "convert/safetensors.h"
#include "model/interchange.h"

namespace shardlm {

// Appends the slices of `t`, read from `entry` of `file` (which must outlive the save).
void add_streamed_slices(const ExternalTensor& t, const SafetensorsReader& file,
                         const SafetensorsEntry& entry, const std::vector<int64_t>& source_shape,
                         std::vector<SourcedSlice>& slices);

// Appends zero slices for the parts of tensor `name` [shape] that no slice in `slices` covers.
void add_zero_slices(const std::string& name, const std::vector<int64_t>& shape,
                     std::vector<SourcedSlice>& slices);

}  // namespace shardlm
