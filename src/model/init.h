// GPT-2 initialisation that does not depend on the parallel layout: the value of every element
// is a pure function of (seed, tensor name, global element index), so a tp2 x pp2 run starts
// from exactly the weights a single rank would have.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/param_layout.h"

namespace shardlm {

// Fills `out` (view.numel floats, the rank's local block of view) with GPT-2's initial values:
// matrices and embeddings N(0, 0.02), residual projections N(0, 0.02/sqrt(2*n_layer)),
// biases 0, LayerNorm weights 1; padded vocabulary rows of wte are 0.
void fill_gpt2_init(float* out, const TensorView& view, const ModelConfig& cfg, uint64_t seed);

// A standard normal sample that is a pure function of (key, index): counter-based, so any
// rank can compute any element.
float counter_normal(uint64_t key, uint64_t index);

}  // namespace shardlm
