#include "data/synthetic.h"

#include "core/hash.h"

namespace shardlm {

void synthetic_samples(uint64_t seed, int vocab, int T, uint64_t first, int count, int32_t* tokens,
                       int32_t* targets) {
  const uint64_t key = splitmix64(seed ^ 0x53594e5448ull);  // "SYNTH"
  for (int i = 0; i < count; ++i) {
    const uint64_t base = (first + static_cast<uint64_t>(i)) * static_cast<uint64_t>(T + 1);
    for (int t = 0; t <= T; ++t) {
      const auto id = static_cast<int32_t>(splitmix64(key ^ (base + static_cast<uint64_t>(t))) %
                                           static_cast<uint64_t>(vocab));
      if (t < T) tokens[i * T + t] = id;
      if (t > 0) targets[i * T + t - 1] = id;
    }
  }
}

}  // namespace shardlm
