#include "model/generator.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "core/error.h"
#include "model/family.h"

namespace shardlm {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::MaxTokens:
      return "max-tokens";
    case StopReason::Eos:
      return "eos";
    case StopReason::ContextFull:
      return "context-full";
  }
  return "?";
}

Generator::Generator(const ModelConfig& cfg, KernelBackend& backend) : cfg_(cfg) {
  cfg.validate();
  decoder_ = model_family(cfg.family).make_decoder(cfg, backend);
  logits_.resize(static_cast<size_t>(cfg.vocab_size));
}

Generator::~Generator() = default;

const std::vector<float>& Generator::prefill(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) fail("prefill: the prompt is empty (at least one token is needed)");
  if (tokens.size() > static_cast<size_t>(cfg_.max_seq_len))
    fail("prefill: " + std::to_string(tokens.size()) +
         " tokens do not fit the model's max_seq_len " + std::to_string(cfg_.max_seq_len));
  decoder_->forward(tokens.data(), static_cast<int>(tokens.size()), 0, logits_.data());
  position_ = static_cast<int>(tokens.size());
  return logits_;
}

const std::vector<float>& Generator::step(int32_t token) {
  if (position_ == 0) fail("step: no prompt yet (call prefill first)");
  if (position_ >= cfg_.max_seq_len)
    fail("step: the context is full (" + std::to_string(cfg_.max_seq_len) +
         " positions, the model's max_seq_len)");
  decoder_->forward(&token, 1, position_, logits_.data());
  ++position_;
  return logits_;
}

GenerateResult Generator::generate(const std::vector<int32_t>& prompt,
                                   const GenerateOptions& options) {
  if (prompt.empty()) fail("generate: the prompt is empty (at least one token is needed)");
  if (prompt.size() >= static_cast<size_t>(cfg_.max_seq_len))
    fail("generate: the prompt has " + std::to_string(prompt.size()) +
         " tokens, which leaves no room in the model's " + "max_seq_len of " +
         std::to_string(cfg_.max_seq_len) + " (at most " + std::to_string(cfg_.max_seq_len - 1) +
         " prompt tokens)");
  if (options.max_tokens < 0)
    fail("max tokens must be >= 0, got " + std::to_string(options.max_tokens));
  Sampler sampler(options.sampling);
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  const auto start = Clock::now();

  GenerateResult result;
  std::vector<int32_t> sequence = prompt;
  const std::vector<float>* logits = &prefill(sequence);
  result.prompt_seconds = seconds_since(start);
  result.stop = StopReason::MaxTokens;
  while (static_cast<int>(result.tokens.size()) < options.max_tokens) {
    const int32_t token = sampler.sample(logits->data(), cfg_.vocab_size);
    if (token == options.eos_id) {
      result.stop = StopReason::Eos;
      break;
    }
    result.tokens.push_back(token);
    sequence.push_back(token);
    // No forward for the last token: nothing is sampled after it.
    if (static_cast<int>(result.tokens.size()) == options.max_tokens) break;
    if (sequence.size() == static_cast<size_t>(cfg_.max_seq_len)) {
      result.stop = StopReason::ContextFull;
      break;
    }
    logits = options.use_kv_cache ? &step(token) : &prefill(sequence);
  }
  result.total_seconds = seconds_since(start);
  return result;
}

}  // namespace shardlm
