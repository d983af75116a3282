// The name of the host this process runs on (gethostname): what heartbeats, error messages and
// the GPU binding call a node, and what the launcher groups ranks by.
#pragma once

#include <string>

namespace shardlm {

// "unknown" when the system call fails.
std::string host_name();

}  // namespace shardlm
