// Point-to-point message tags, one per kind of message, so that a mismatched exchange is
// caught by MPI's matching instead of delivering the wrong tensor.
#pragma once

namespace shardlm {

enum MessageTag : int {
  kTagActivation = 11,      // pipeline: stage output -> next stage's input [B,T,C]
  kTagActivationGrad = 12,  // pipeline: d(stage input) -> previous stage's output gradient
  kTagTiedGradient = 21,    // first <-> last stage: gradient of a tied tensor (GPT-2's wte)
};

}  // namespace shardlm
