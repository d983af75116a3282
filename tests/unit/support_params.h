// A training rank's parameters as one host vector, for tests that compare them: every element
// of its flat buffer [layout().total()], including the layer units ZeRO-3 keeps only a part of
// (gathered one unit at a time through the stage's ZeRO hooks: a collective over DP, so every
// DP rank of the stage calls it together).
#pragma once

#include <vector>

#include "train/trainer.h"

namespace shardlm::testing {

std::vector<float> stage_params_on_host(Trainer& trainer);

}  // namespace shardlm::testing
