// Moving one external tensor (model/interchange.h: pieces of a shardlm tensor plus a layout)
// between a checkpoint and another engine's file.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/interchange.h"

namespace shardlm {

class CheckpointReader;

// Elements per streamed block (4 MiB of f32): what bounds memory for tensors kept in layout.
inline constexpr int64_t kConvertBlockElements = int64_t{1} << 20;

int64_t external_numel(const ExternalTensor& t);
// The external tensor's elements in its row-major order, in blocks of whole rows, read from the
// checkpoint's parameters (any saved layout, any stored dtype). Tensors in shardlm's layout
// stream in blocks of at most kConvertBlockElements; a transposed or permuted one is read
// whole first. Throws naming the tensor when the checkpoint lacks it or its shape differs.
void read_external(CheckpointReader& reader, const ExternalTensor& t,
                   const std::function<void(const float* values, int64_t n)>& sink);

// The inverse for import: `external` [external_numel(t)] in the external order, rearranged into
// the order of t's pieces (each row-major, one after the other), so that the k-th piece's
// rectangle of the shardlm tensor holds the next prod(count) elements. For kSame a copy.
void external_to_piece_order(const ExternalTensor& t, const float* external, float* pieces);

}  // namespace shardlm
