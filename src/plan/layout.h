// One way to run a model over ranks: the choices `shardlm plan` enumerates and the trainer's
// flags set (--tp, --pp, --pp-layers, --zero, --recompute, --micro-batch; dp follows).
#pragma once

#include <string>
#include <vector>

#include "model/recompute.h"

namespace shardlm {

struct Layout {
  int tp = 1, pp = 1, dp = 1;
  int zero = 0;  // ZeRO stage 0..3
  Recompute recompute = Recompute::None;
  int micro_batch = 1;         // sequences per micro-batch (B)
  int micro_batches = 1;       // per DP rank per step (M = global batch / (dp * B))
  std::vector<int> pp_layers;  // blocks per stage; empty: the trainer's even split
  int world() const { return tp * pp * dp; }
};

// Why this build's trainer cannot run `layout` yet ("" when it can).
// `gpu`: the layout runs on the CUDA backend, which has one rank per run until the NCCL
// communicator lands (train_run.cpp's select_backend).
std::string not_yet_runnable(const Layout& layout, bool gpu);

}  // namespace shardlm
