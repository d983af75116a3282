// Layout-free initialisation helpers for the families' init rules: the value of every element
// is a pure function of (seed, tensor name, global element index), so a tp2 x pp2 run starts
// from exactly the weights a single rank would have.
#pragma once

#include <cstdint>

#include "model/param_layout.h"

namespace shardlm {

// A standard normal sample that is a pure function of (key, index): counter-based, so any
// rank can compute any element.
float counter_normal(uint64_t key, uint64_t index);

// out[view.numel] = value.
void fill_constant(float* out, const TensorView& view, float value);

// out[view.numel] = std * N(0,1) drawn by global element index under a key derived from
// (seed, view.name); rows (global index along dim 0) >= zero_rows_from are 0 instead (the
// padded vocabulary rows of an embedding; -1: none).
void fill_counter_normal(float* out, const TensorView& view, uint64_t seed, float std,
                         int64_t zero_rows_from = -1);

}  // namespace shardlm
