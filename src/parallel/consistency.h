// Start-up checks that every rank runs with the same inputs (config, layout, vocabulary):
// a mismatch becomes an error on every rank instead of a hang or silent divergence.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "parallel/comm.h"

namespace shardlm {

// Collective over `world`: compares a hash of `text` on all ranks. If any differs from rank 0's,
// throws on EVERY rank "<what> differs between ranks: ranks 2,3 differ from rank 0". All ranks
// take part in the same single all_gather whatever their text, so a mismatch never hangs.
void check_same_on_all_ranks(Communicator& world, const std::string& what, const std::string& text);

}  // namespace shardlm
