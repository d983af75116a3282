#include "plan/layout.h"

namespace shardlm {

const char* recompute_name(Recompute r) {
  switch (r) {
    case Recompute::None:
      return "none";
    case Recompute::Selective:
      return "selective";
    case Recompute::Full:
      return "full";
  }
  return "none";
}

std::string not_yet_runnable(const Layout& layout, bool gpu) {
  if (gpu && (layout.world() > 1 || layout.zero != 0))
    return "the CUDA backend runs one rank without ZeRO until the NCCL communicator is built";
  // The trainer has ZeRO-0/1 and no recomputation (data_parallel.h, trainer.h); ZeRO-2/3 and
  // --recompute are being built (issue 12). Change these lines when they land.
  if (layout.zero > 1) return "ZeRO-" + std::to_string(layout.zero) + " is not built yet";
  if (layout.recompute != Recompute::None)
    return std::string("--recompute ") + recompute_name(layout.recompute) + " is not built yet";
  return "";
}

}  // namespace shardlm
