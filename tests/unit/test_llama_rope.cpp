// Llama 3.1's rope_scaling as [model] keys: the presets that publish it carry it, it round-trips
// only when set, bad values are refused naming the key, and the rescaled frequencies follow
// transformers' three bands. (The end-to-end proof is test_reference's
// llama_fixture_rope_scaling, against transformers itself.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "model/config.h"
#include "model/llama/rope.h"
#include "support_errors.h"

namespace shardlm {
namespace {

using testing::expect_error;

ModelConfig scaled_tiny() {
  ModelConfig c = model_preset("llama-tiny");
  c.rope_scaling = "llama3";
  c.rope_scaling_factor = 8;
  c.rope_scaling_low_freq_factor = 1;
  c.rope_scaling_high_freq_factor = 4;
  c.rope_scaling_original_max_position_embeddings = 64;
  return c;
}

// scaled_tiny with head_dim 8 (4 frequencies), for the band tests.
ModelConfig scaled_head_dim_8() {
  ModelConfig c = scaled_tiny();
  c.n_embd = 32;
  c.n_head = 4;
  return c;
}

// c with no rope scaling: the unscaled frequencies to compare against.
ModelConfig without_scaling(ModelConfig c) {
  c.rope_scaling = "";
  c.rope_scaling_factor = c.rope_scaling_low_freq_factor = 0;
  c.rope_scaling_high_freq_factor = 0;
  c.rope_scaling_original_max_position_embeddings = 0;
  return c;
}

TEST(LlamaRopeScaling, PresetsCarryThePublishedValues) {
  for (const auto& [name, factor] :
       {std::pair{"llama-3.2-1b", 32.0}, {"llama-3.2-3b", 32.0}, {"llama-3.1-405b", 8.0}}) {
    const ModelConfig c = model_preset(name);
    EXPECT_EQ(c.rope_scaling, "llama3") << name;
    EXPECT_EQ(c.rope_scaling_factor, factor) << name;
    EXPECT_EQ(c.rope_scaling_low_freq_factor, 1.0) << name;
    EXPECT_EQ(c.rope_scaling_high_freq_factor, 4.0) << name;
    EXPECT_EQ(c.rope_scaling_original_max_position_embeddings, 8192) << name;
  }
  for (const char* name : {"llama-tiny", "smollm2-135m", "llama-3-8b", "llama-3-70b"})
    EXPECT_EQ(model_preset(name).rope_scaling, "") << name;
}

TEST(LlamaRopeScaling, WrittenOnlyWhenSetAndRoundTrips) {
  const std::string plain = model_config_to_ini(model_preset("llama-tiny"));
  EXPECT_EQ(plain.find("rope_scaling"), std::string::npos) << plain;
  const ModelConfig c = scaled_tiny();
  const std::string ini = model_config_to_ini(c);
  for (const char* line :
       {"rope_scaling=llama3\n", "rope_scaling_factor=8\n", "rope_scaling_low_freq_factor=1\n",
        "rope_scaling_high_freq_factor=4\n", "rope_scaling_original_max_position_embeddings=64\n"})
    EXPECT_NE(ini.find(line), std::string::npos) << line << " in\n" << ini;
  EXPECT_EQ(model_config_from_ini(ini), c);
  EXPECT_NE(model_config_diff(model_preset("llama-tiny"), c).find("rope_scaling_factor: 0 -> 8"),
            std::string::npos);
}

TEST(LlamaRopeScaling, RefusalsNameTheKey) {
  ModelConfig c = scaled_tiny();
  c.rope_scaling = "yarn";
  expect_error([&] { c.validate(); }, {"rope_scaling must be llama3", "'yarn'"});
  c = scaled_tiny();
  c.rope_scaling_factor = 0.5;
  expect_error([&] { c.validate(); }, {"rope_scaling_factor >= 1", "0.5"});
  c = scaled_tiny();
  c.rope_scaling_low_freq_factor = 0;
  expect_error([&] { c.validate(); }, {"rope_scaling_low_freq_factor > 0", "none"});
  c = scaled_tiny();
  c.rope_scaling_high_freq_factor = 1;
  expect_error([&] { c.validate(); },
               {"rope_scaling_high_freq_factor > rope_scaling_low_freq_factor"});
  c = scaled_tiny();
  c.rope_scaling_original_max_position_embeddings = 0;
  expect_error([&] { c.validate(); }, {"rope_scaling_original_max_position_embeddings > 0"});
  c = model_preset("llama-tiny");
  c.rope_scaling_factor = 8;  // a field without the type
  expect_error([&] { c.validate(); }, {"need rope_scaling=llama3"});
  // From the [model] text too, and GPT-2 has no RoPE to scale.
  const std::string ini = model_config_to_ini(scaled_tiny());
  expect_error([&] { model_config_from_ini(ini + "rope_scaling_factor=x\n"); },
               {"rope_scaling_factor"});
  ModelConfig gpt2 = model_preset("tiny");
  gpt2.rope_scaling = "llama3";
  expect_error([&] { gpt2.validate(); }, {"gpt2 family has no rope_scaling"});
}

// head_dim 8, theta 10000: wavelengths 2 pi * {1, 10, 100, 1000}; with an original context of
// 64, low 1 and high 4 the first is below 16 (kept), the second between 16 and 64
// (interpolated), the last two above 64 (divided by the factor).
TEST(LlamaRopeScaling, FrequenciesFollowTheThreeBands) {
  const ModelConfig c = scaled_head_dim_8();
  const ModelConfig plain = without_scaling(c);
  const std::vector<float> base = rope_inv_freq(plain), scaled = rope_inv_freq(c);
  ASSERT_EQ(base.size(), 4u);
  EXPECT_EQ(scaled[0], base[0]);
  const double smooth = (64.0 / (2 * M_PI / base[1]) - 1.0) / (4.0 - 1.0);  // 0.68
  EXPECT_NEAR(scaled[1], (1 - smooth) * base[1] / 8 + smooth * base[1], 1e-7);
  EXPECT_LT(scaled[1], base[1]);
  EXPECT_GT(scaled[1], base[1] / 8);
  EXPECT_FLOAT_EQ(scaled[2], base[2] / 8);
  EXPECT_FLOAT_EQ(scaled[3], base[3] / 8);
  // The tables are cos/sin of position * frequency.
  const RopeTables t = rope_tables(c);
  EXPECT_FLOAT_EQ(t.cos[static_cast<size_t>(100) * 4 + 3], std::cos(100.0f * scaled[3]));
}

// llama.cpp's rope_freqs (GGUF export): the factor each frequency is divided by, in the same
// three bands, so that dividing the unscaled frequencies gives shardlm's scaled ones.
TEST(LlamaRopeScaling, LlamaCppFrequencyFactorsDivideIntoTheScaledFrequencies) {
  const ModelConfig c = scaled_head_dim_8();
  const ModelConfig plain = without_scaling(c);
  const std::vector<float> base = rope_inv_freq(plain), scaled = rope_inv_freq(c);
  const std::vector<float> f = llama3_frequency_factors(c);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_GT(f[1], 1.0f);
  EXPECT_LT(f[1], 8.0f);
  EXPECT_EQ(f[2], 8.0f);
  EXPECT_EQ(f[3], 8.0f);
  for (size_t i = 0; i < f.size(); ++i) EXPECT_NEAR(base[i] / f[i], scaled[i], 2e-7 * base[i]) << i;
  expect_error([&] { llama3_frequency_factors(plain); }, {"llama3 frequency factors"});
}

}  // namespace
}  // namespace shardlm
