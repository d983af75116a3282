#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/error.h"

namespace shardlm {

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

}  // namespace shardlm
