#include "model/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/error.h"
#include "model/param_layout.h"
#include "parallel/mpi_comm.h"

namespace shardlm {

// ---- sampling ---------------------------------------------------------------------------------

namespace {
std::string number(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}
}  // namespace

void SamplingOptions::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    fail("temperature must be a finite number >= 0, got " + number(temperature));
  if (top_k < 0) fail("top-k must be >= 0 (0 = no limit), got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("top-p must be in (0, 1], got " + number(top_p));
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  options_.validate();
}

int32_t Sampler::sample(const float* logits, int vocab_size) {
  SHARDLM_CHECK(vocab_size > 0, "sampling needs at least one token");
  for (int i = 0; i < vocab_size; ++i)
    if (!std::isfinite(logits[i]))
      fail("the logit of token id " + std::to_string(i) + " is " + number(logits[i]) +
           ": the model produced non-finite values (diverged or damaged weights?)");
  // Greedy: the first maximum, so that top-k = 1 (ties broken the same way) agrees.
  if (options_.temperature == 0.0f)
    return static_cast<int32_t>(std::max_element(logits, logits + vocab_size) - logits);

  order_.resize(static_cast<size_t>(vocab_size));
  for (int i = 0; i < vocab_size; ++i) order_[static_cast<size_t>(i)] = i;
  // Most likely first; equal logits by id, so the order does not depend on the sort.
  const auto more_likely = [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  size_t keep = order_.size();
  if (options_.top_k > 0 && options_.top_k < vocab_size) {
    keep = static_cast<size_t>(options_.top_k);
    std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep),
                      order_.end(), more_likely);
  } else if (options_.top_p < 1.0f) {
    std::sort(order_.begin(), order_.end(), more_likely);
  }

  // Softmax weights of the candidates in double (the maximum is among them in every case).
  float max_logit = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < keep; ++i) max_logit = std::max(max_logit, logits[order_[i]]);
  weights_.resize(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    weights_[i] =
        std::exp((static_cast<double>(logits[order_[i]]) - max_logit) / options_.temperature);
    total += weights_[i];
  }
  if (options_.top_p < 1.0f) {
    // Nucleus: the shortest prefix (of the sorted candidates) whose mass reaches top_p.
    const double target = static_cast<double>(options_.top_p) * total;
    double mass = 0.0;
    size_t n = 0;
    while (n < keep && mass < target) mass += weights_[n++];
    keep = std::max<size_t>(n, 1);
    total = mass;
  }

  // u uniform in [0, total): 53 random bits, the same on every platform.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += weights_[i];
    if (u < cumulative) return order_[i];
  }
  return order_[keep - 1];  // u within rounding of the total
}

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

// ---- the model --------------------------------------------------------------------------------

// One block's weights in the model's flat buffer.
struct Generator::BlockWeights {
  const float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *attproj_w, *attproj_b;
  const float *ln2_w, *ln2_b, *fc_w, *fc_b, *fcproj_w, *fcproj_b;
};

Generator::Generator(const ModelConfig& cfg, KernelBackend& backend)
    : cfg_(cfg), be_(backend), tp_(std::make_unique<SelfCommunicator>("tp")) {
  cfg.validate();
  model_ = std::make_unique<GPT2>(cfg, ShardSpec::whole_model(cfg), be_, *tp_, 1, 1);
  C_ = cfg.n_embd;
  NH_ = cfg.n_head;
  hd_ = cfg.head_dim();
  Vp_ = cfg.padded_vocab();
  S_ = cfg.max_seq_len;
  for (int l = 0; l < cfg.n_layer; ++l) {
    auto w = [&](const char* suffix) -> const float* {
      return model_->param(layer_param_name(l, suffix));
    };
    blocks_.push_back({w("ln_1.weight"), w("ln_1.bias"), w("attn.c_attn.weight"),
                       w("attn.c_attn.bias"), w("attn.c_proj.weight"), w("attn.c_proj.bias"),
                       w("ln_2.weight"), w("ln_2.bias"), w("mlp.c_fc.weight"), w("mlp.c_fc.bias"),
                       w("mlp.c_proj.weight"), w("mlp.c_proj.bias")});
  }
  const size_t S = S_, C = C_;
  tokens_ = be_.alloc_ints(S);
  owned_.push_back(tokens_);
  resid_ = alloc(S * C);
  ln_ = alloc(S * C);
  ln_mean_ = alloc(S);
  ln_rstd_ = alloc(S);
  qkv_ = alloc(S * 3 * C);
  atty_ = alloc(S * C);
  proj_ = alloc(S * C);
  fc_ = alloc(S * 4 * C);
  fc_gelu_ = alloc(S * 4 * C);
  logits_dev_ = alloc(static_cast<size_t>(Vp_));
  kv_cache_ = alloc(static_cast<size_t>(cfg.n_layer) * 2 * S * C);
  logits_.resize(static_cast<size_t>(cfg.vocab_size));
}

Generator::~Generator() {
  for (void* p : owned_) be_.free_memory(p);
}

float* Generator::alloc(size_t n) {
  float* p = be_.alloc_floats(n);
  owned_.push_back(p);
  return p;
}

void Generator::forward(const int32_t* tokens, int n, int pos0) {
  SHARDLM_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= S_, "generator forward outside the context");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size)
      fail("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(pos0 + i) +
           " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
  const float* wte = model_->param("wte");
  be_.copy_from_host(tokens_, tokens, static_cast<size_t>(n) * sizeof(int32_t));
  be_.token_embedding_forward(resid_, tokens_, wte, n, C_, 0, Vp_);
  // Rows pos0.. of the position embedding.
  be_.position_embedding_forward(resid_, model_->param("wpe") + static_cast<size_t>(pos0) * C_, 1,
                                 n, C_);
  for (int l = 0; l < cfg_.n_layer; ++l) layer_forward(l, n, pos0);
  // Only the last position's logits are needed: final layernorm and tied head on one row.
  be_.layernorm_forward(ln_, ln_mean_, ln_rstd_, resid_ + static_cast<size_t>(n - 1) * C_,
                        model_->param("ln_f.weight"), model_->param("ln_f.bias"), 1, C_);
  be_.matmul_forward(logits_dev_, ln_, wte, nullptr, 1, C_, Vp_);
  be_.copy_to_host(logits_.data(), logits_dev_, logits_.size() * sizeof(float));
  position_ = pos0 + n;
}

void Generator::layer_forward(int layer, int n, int pos0) {
  const BlockWeights& w = blocks_[static_cast<size_t>(layer)];
  const size_t nC = static_cast<size_t>(n) * C_, layer_cache = static_cast<size_t>(S_) * C_;
  float* k_cache = kv_cache_ + static_cast<size_t>(layer) * 2 * layer_cache;  // [NH,S,hd]
  float* v_cache = k_cache + layer_cache;                                     // [NH,S,hd]

  be_.layernorm_forward(ln_, ln_mean_, ln_rstd_, resid_, w.ln1_w, w.ln1_b, n, C_);
  be_.matmul_forward(qkv_, ln_, w.qkv_w, w.qkv_b, n, C_, 3 * C_);
  be_.kv_cache_append(k_cache, v_cache, qkv_, pos0, n, NH_, hd_, S_);
  be_.attention_decode(atty_, qkv_, k_cache, v_cache, pos0, n, NH_, hd_, S_);
  be_.matmul_forward(proj_, atty_, w.attproj_w, w.attproj_b, n, C_, C_);
  be_.add_inplace(resid_, proj_, nC);

  be_.layernorm_forward(ln_, ln_mean_, ln_rstd_, resid_, w.ln2_w, w.ln2_b, n, C_);
  be_.matmul_forward(fc_, ln_, w.fc_w, w.fc_b, n, C_, 4 * C_);
  be_.gelu_forward(fc_gelu_, fc_, static_cast<size_t>(n) * 4 * C_);
  be_.matmul_forward(proj_, fc_gelu_, w.fcproj_w, w.fcproj_b, n, 4 * C_, C_);
  be_.add_inplace(resid_, proj_, nC);
}

const std::vector<float>& Generator::prefill(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) fail("prefill: the prompt is empty (at least one token is needed)");
  if (tokens.size() > static_cast<size_t>(S_))
    fail("prefill: " + std::to_string(tokens.size()) +
         " tokens do not fit the model's max_seq_len " + std::to_string(S_));
  forward(tokens.data(), static_cast<int>(tokens.size()), 0);
  return logits_;
}

const std::vector<float>& Generator::step(int32_t token) {
  if (position_ == 0) fail("step: no prompt yet (call prefill first)");
  if (position_ >= S_)
    fail("step: the context is full (" + std::to_string(S_) +
         " positions, the model's max_seq_len)");
  forward(&token, 1, position_);
  return logits_;
}

GenerateResult Generator::generate(const std::vector<int32_t>& prompt,
                                   const GenerateOptions& options) {
  if (prompt.empty()) fail("generate: the prompt is empty (at least one token is needed)");
  if (prompt.size() >= static_cast<size_t>(S_))
    fail("generate: the prompt has " + std::to_string(prompt.size()) +
         " tokens, which leaves no room in the model's " + "max_seq_len of " + std::to_string(S_) +
         " (at most " + std::to_string(S_ - 1) + " prompt tokens)");
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
    if (sequence.size() == static_cast<size_t>(S_)) {
      result.stop = StopReason::ContextFull;
      break;
    }
    logits = options.use_kv_cache ? &step(token) : &prefill(sequence);
  }
  result.total_seconds = seconds_since(start);
  return result;
}

}  // namespace shardlm
