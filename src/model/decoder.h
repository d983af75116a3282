// What generation needs of a model family: the whole model on one rank (tp = 1, pp = 1) with a
// KV cache. Each forward runs n new tokens at positions pos0..pos0+n-1, appends their keys and
// values to the cache and attends over every cached position, so a decode step (n = 1) costs
// one position, not the whole sequence.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/weights.h"

namespace shardlm {

class CachedDecoder {
 public:
  virtual ~CachedDecoder() = default;
  virtual const ModelConfig& config() const = 0;
  // The weights: weights().init(seed), or load_model_params(weights(), reader).
  virtual ModelWeights& weights() = 0;
  // Runs tokens[0..n) (host) at positions pos0.. (1 <= n, pos0 + n <= max_seq_len; the cache
  // must hold positions 0..pos0-1) and writes the logits that predict the token after the last
  // one to logits_host [vocab_size].
  virtual void forward(const int32_t* tokens, int n, int pos0, float* logits_host) = 0;
};

}  // namespace shardlm
