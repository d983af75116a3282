// Text generation on one rank with a KV cache, for any model family: the family's
// CachedDecoder (model/decoder.h) runs the model, a Sampler (model/sampler.h) picks tokens.
// The prompt is one prefill; each new token is one decode step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/sampler.h"
#include "model/weights.h"

namespace shardlm {

enum class StopReason {
  MaxTokens,    // generated max_tokens tokens
  Eos,          // sampled the end-of-sequence id
  ContextFull,  // prompt + generated reached the model's max_seq_len
};
const char* stop_reason_name(StopReason reason);

struct GenerateOptions {
  int max_tokens = 100;
  SamplingOptions sampling;
  int eos_id = -1;           // stop when sampled (it is not part of the output); -1 = never
  bool use_kv_cache = true;  // false: run the whole sequence again for every new token
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (no prompt, no EOS)
  StopReason stop = StopReason::MaxTokens;
  double prompt_seconds = 0.0;  // the first forward, over the whole prompt
  double total_seconds = 0.0;   // everything, prompt included
};

class Generator {
 public:
  Generator(const ModelConfig& cfg, KernelBackend& backend);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // The weights: weights().init(seed), or load_model_params(weights(), reader).
  ModelWeights& weights() { return decoder_->weights(); }
  const ModelConfig& config() const { return cfg_; }

  // Empties the cache and runs `tokens` at positions 0..n-1 (1 <= n <= max_seq_len). Returns
  // the logits [vocab_size] that predict the token after them (valid until the next call).
  const std::vector<float>& prefill(const std::vector<int32_t>& tokens);
  // Runs `token` at the next position (position() < max_seq_len, after a prefill) and returns
  // the logits that predict the token after it.
  const std::vector<float>& step(int32_t token);
  // Positions the cache holds.
  int position() const { return position_; }

  // Samples up to options.max_tokens tokens after `prompt` (1 <= length < max_seq_len). With
  // the cache, a prefill then one step per token; without it, a prefill of the whole
  // sequence per token. Both give the same tokens.
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& options);

 private:
  ModelConfig cfg_;
  std::unique_ptr<CachedDecoder> decoder_;
  int position_ = 0;
  std::vector<float> logits_;  // [vocab_size] host logits of the last forward
};

}  // namespace shardlm
