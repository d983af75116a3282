// Seeded random token sequences for runs without a dataset (`--data synthetic`), benchmarks and
// tests. Like a real dataset's windows, sample g is a pure function of (seed, g): every
// layout, every DP split and every resume sees the same data.
#pragma once

#include <cstdint>

namespace shardlm {

// Fills samples [first, first + count): tokens/targets [count, T], targets shifted by one
// (sample g is the T+1 tokens id(seed, g, 0..T)); ids uniform in [0, vocab).
void synthetic_samples(uint64_t seed, int vocab, int T, uint64_t first, int count, int32_t* tokens,
                       int32_t* targets);

}  // namespace shardlm
