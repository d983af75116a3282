#include "model/llama/rope.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace shardlm {

namespace {

constexpr const char* kLlama3 = "llama3";

bool any_scaling_field_set(const ModelConfig& c) {
  return c.rope_scaling_factor != 0 || c.rope_scaling_low_freq_factor != 0 ||
         c.rope_scaling_high_freq_factor != 0 ||
         c.rope_scaling_original_max_position_embeddings != 0;
}

// RoPE's unscaled inverse frequency i: 1 / theta^(2i/hd) (transformers' inv_freq, float32).
float unscaled_inv_freq(const ModelConfig& cfg, int i) {
  return static_cast<float>(1.0 /
                            std::pow(cfg.rope_theta, static_cast<double>(2 * i) / cfg.head_dim()));
}

// Llama 3.1's rescale of one frequency, in float32 as transformers does it.
float llama3_scaled(float inv_freq, const ModelConfig& c) {
  const float factor = static_cast<float>(c.rope_scaling_factor);
  const float low = static_cast<float>(c.rope_scaling_low_freq_factor);
  const float high = static_cast<float>(c.rope_scaling_high_freq_factor);
  const float old_context = static_cast<float>(c.rope_scaling_original_max_position_embeddings);
  const float wavelen = static_cast<float>(2.0 * M_PI) / inv_freq;
  if (wavelen < old_context / high) return inv_freq;          // high frequencies: unchanged
  if (wavelen > old_context / low) return inv_freq / factor;  // low frequencies: scaled
  const float smooth = (old_context / wavelen - low) / (high - low);
  return (1.0f - smooth) * inv_freq / factor + smooth * inv_freq;
}

}  // namespace

void validate_rope_scaling(const ModelConfig& c) {
  auto bad = [](const std::string& why) { fail("invalid model config: " + why); };
  if (c.rope_scaling.empty()) {
    if (any_scaling_field_set(c))
      bad("rope_scaling_factor, rope_scaling_low_freq_factor, rope_scaling_high_freq_factor "
          "and rope_scaling_original_max_position_embeddings need rope_scaling=llama3");
    return;
  }
  if (c.rope_scaling != kLlama3)
    bad("rope_scaling must be llama3 (Llama 3.1's rope_type; the only one shardlm has), got '" +
        c.rope_scaling + "'");
  auto need = [&](const char* key, double v, const char* rule, bool ok) {
    if (!ok)
      bad(std::string("rope_scaling=llama3 needs ") + key + " " + rule + ", got " +
          (v == 0 ? std::string("none") : std::to_string(v)));
  };
  need("rope_scaling_factor", c.rope_scaling_factor, ">= 1", c.rope_scaling_factor >= 1);
  need("rope_scaling_low_freq_factor", c.rope_scaling_low_freq_factor, "> 0",
       c.rope_scaling_low_freq_factor > 0);
  need("rope_scaling_high_freq_factor", c.rope_scaling_high_freq_factor,
       "> rope_scaling_low_freq_factor",
       c.rope_scaling_high_freq_factor > c.rope_scaling_low_freq_factor);
  need("rope_scaling_original_max_position_embeddings",
       c.rope_scaling_original_max_position_embeddings, "> 0",
       c.rope_scaling_original_max_position_embeddings > 0);
}

std::vector<float> rope_inv_freq(const ModelConfig& cfg) {
  const int half = cfg.head_dim() / 2;
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    inv_freq[i] = unscaled_inv_freq(cfg, i);
    if (cfg.rope_scaling == kLlama3) inv_freq[i] = llama3_scaled(inv_freq[i], cfg);
  }
  return inv_freq;
}

std::vector<float> llama3_frequency_factors(const ModelConfig& c) {
  SHARDLM_CHECK(c.rope_scaling == kLlama3,
                "llama3 frequency factors of rope_scaling '" + c.rope_scaling + "'");
  const float factor = static_cast<float>(c.rope_scaling_factor);
  const float low = static_cast<float>(c.rope_scaling_low_freq_factor);
  const float high = static_cast<float>(c.rope_scaling_high_freq_factor);
  const float old_context = static_cast<float>(c.rope_scaling_original_max_position_embeddings);
  std::vector<float> out(static_cast<size_t>(c.head_dim() / 2));
  for (size_t i = 0; i < out.size(); ++i) {
    const float wavelen =
        static_cast<float>(2.0 * M_PI) / unscaled_inv_freq(c, static_cast<int>(i));
    if (wavelen < old_context / high) {
      out[i] = 1.0f;
    } else if (wavelen > old_context / low) {
      out[i] = factor;
    } else {
      const float smooth = (old_context / wavelen - low) / (high - low);
      out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
    }
  }
  return out;
}

RopeTables rope_tables(const ModelConfig& cfg) {
  const std::vector<float> inv_freq = rope_inv_freq(cfg);
  const size_t half = inv_freq.size(), S = static_cast<size_t>(cfg.max_seq_len);
  RopeTables t;
  t.cos.resize(S * half);
  t.sin.resize(t.cos.size());
  for (size_t i = 0; i < half; ++i) {
    for (size_t p = 0; p < S; ++p) {
      const float angle = static_cast<float>(p) * inv_freq[i];
      t.cos[p * half + i] = std::cos(angle);
      t.sin[p * half + i] = std::sin(angle);
    }
  }
  return t;
}

}  // namespace shardlm
