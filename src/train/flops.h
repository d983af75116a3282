// Model FLOPs per trained token: the one definition behind MFU in `shardlm train` and the
// GFLOP/s of bench/bench_train_step.
#pragma once

#include "model/config.h"

namespace shardlm {

// 6 per parameter that takes part in a matmul (every block weight and the tied LM head; not
// the position table) plus attention's 6*L*T*C for sequences of length T: forward and backward
// of q@k^T and att@v over the causal half of the T x T scores (PaLM's 12*L*T*C counts all of
// it; the kernels skip the masked half).
double model_flops_per_token(const ModelConfig& m, int T);

}  // namespace shardlm
