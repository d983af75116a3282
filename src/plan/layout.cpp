#include "plan/layout.h"

namespace shardlm {

std::string not_yet_runnable(const Layout& layout, bool gpu) {
  if (gpu && (layout.world() > 1 || layout.zero != 0))
    return "the CUDA backend runs one rank without ZeRO until the NCCL communicator is built";
  return "";
}

}  // namespace shardlm
