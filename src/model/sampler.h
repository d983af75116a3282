// Picking the next token from logits: temperature, top-k and top-p (nucleus) sampling, and
// greedy decoding. Works on host logits of the real vocabulary (padding ids never appear).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace shardlm {

struct SamplingOptions {
  float temperature = 1.0f;  // logits are divided by it; 0 = greedy (argmax, lowest id on ties)
  int top_k = 0;             // keep the k most likely tokens; 0 = no limit
  // Keep the fewest most likely tokens whose probability reaches top_p (after top-k, of the
  // renormalised remainder, as Hugging Face's warpers do); 1 = no limit.
  float top_p = 1.0f;
  uint64_t seed = 0;
  // Throws naming the option: temperature < 0, top_k < 0, top_p outside (0, 1].
  void validate() const;
};

// Picks token ids from logits (all finite, else it throws). The same options (seed included)
// and the same logits give the same sequence of ids.
class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  int32_t sample(const float* logits /*[vocab_size]*/, int vocab_size);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;   // candidate ids, most likely first when truncating
  std::vector<double> weights_;  // exp((logit - max) / temperature) of order_
};

}  // namespace shardlm
