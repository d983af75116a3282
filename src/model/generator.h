// Text generation from a GPT-2 on one rank (tp = 1, pp = 1) with a KV cache.
//
// The weights live in a GPT2 built for B = 1, T = 1 (its flat buffer and view table are the
// training model's, so init_weights and train/checkpointing.h's load_model_params fill it);
// the forward here is the same computation as GPT2::forward, written over the KV-cached
// attention kernels: each call runs n new tokens at positions pos0..pos0+n-1, appends their
// keys and values to the cache and attends over every cached position. A decode step is one
// such call with n = 1, so a new token costs one position, not the whole sequence.
//
// Sampling (Sampler) works on host logits of the real vocabulary (padding ids never appear).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/gpt2.h"
#include "parallel/comm.h"

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

  // The weights: model().init_weights(seed), or load_model_params(model(), reader).
  GPT2& model() { return *model_; }
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
  struct BlockWeights;
  // Runs tokens[0..n) at positions pos0..pos0+n-1 and leaves the last one's logits in logits_.
  void forward(const int32_t* tokens, int n, int pos0);
  void layer_forward(int layer, int n, int pos0);
  float* alloc(size_t n);

  ModelConfig cfg_;
  KernelBackend& be_;
  std::unique_ptr<Communicator> tp_;  // a group of one
  std::unique_ptr<GPT2> model_;
  std::vector<BlockWeights> blocks_;
  int C_, NH_, hd_, Vp_, S_;  // channels, heads, head size, padded vocabulary, max_seq_len
  int position_ = 0;
  std::vector<void*> owned_;
  // Backend buffers for up to S_ rows (a full-length prefill).
  int32_t* tokens_;            // [S]
  float* resid_;               // [S,C] residual stream
  float* ln_;                  // [S,C] layernorm output
  float* ln_mean_;             // [S]
  float* ln_rstd_;             // [S]
  float* qkv_;                 // [S,3C]
  float* atty_;                // [S,C] attention output before c_proj
  float* proj_;                // [S,C] c_proj output (attention and MLP)
  float* fc_;                  // [S,4C]
  float* fc_gelu_;             // [S,4C]
  float* logits_dev_;          // [Vp]
  float* kv_cache_;            // [n_layer][2][NH][S][hd]
  std::vector<float> logits_;  // host copy of the real vocabulary's logits [vocab_size]
};

}  // namespace shardlm
