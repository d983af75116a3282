// Model configuration, presets, the view table, and the model's refusals of bad input: every
// error names the field or value at fault, and nothing crashes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/init.h"
#include "model/model.h"
#include "model/param_layout.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"

using namespace shardlm;
using shardlm::testing::expect_error;

namespace {

ModelConfig small() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.vocab_size = 100;
  c.max_seq_len = 8;
  return c;
}

}  // namespace

TEST(ModelConfig, PresetsHaveTheKnownSizes) {
  EXPECT_NEAR(model_preset("gpt2").num_parameters() / 1e6, 124.4, 0.1);
  EXPECT_NEAR(model_preset("gpt2-medium").num_parameters() / 1e6, 354.8, 0.1);
  EXPECT_NEAR(model_preset("gpt2-large").num_parameters() / 1e6, 774.0, 0.1);
  EXPECT_NEAR(model_preset("gpt2-xl").num_parameters() / 1e6, 1557.6, 0.1);
  EXPECT_EQ(model_preset("gpt2").padded_vocab(), 50304);
  for (const auto& name : model_preset_names())
    EXPECT_NO_THROW(model_preset(name).validate()) << name;
  expect_error([] { model_preset("gpt3"); }, {"unknown model preset 'gpt3'"});
}

TEST(ModelConfig, InvalidConfigsNameTheField) {
  ModelConfig c = small();
  c.n_embd = 15;
  expect_error([&] { c.validate(); }, {"n_embd (15) must be divisible by n_head (2)"});
  c = small();
  c.n_layer = 0;
  expect_error([&] { c.validate(); }, {"n_layer must be > 0"});
  c = small();
  c.vocab_size = -3;
  expect_error([&] { c.validate(); }, {"vocab_size must be > 0, got -3"});
  c = small();
  c.max_seq_len = 0;
  expect_error([&] { c.validate(); }, {"max_seq_len"});
}

TEST(ModelConfig, IniRoundTripAndErrors) {
  const ModelConfig c = small();
  EXPECT_EQ(model_config_from_ini(model_config_to_ini(c) + "\n[train]\nlr=1\n"), c);
  EXPECT_EQ(model_config_diff(c, c), "");
  ModelConfig d = c;
  d.n_layer = 3;
  EXPECT_EQ(model_config_diff(c, d), "n_layer: 2 -> 3");
  expect_error([] { model_config_from_ini("[model]\nn_layer=2\n"); }, {"missing key 'n_head'"});
  expect_error([&] { model_config_from_ini(model_config_to_ini(c) + "colour=red\n"); },
               {"unknown key 'colour'"});
  expect_error([] { model_config_from_ini("[model]\nn_layer=two\n"); },
               {"n_layer must be an integer"});
}

TEST(ParamLayout, ShardsAreRectanglesThatTileTheGlobalTensors) {
  ModelConfig c = small();
  c.n_head = 4;
  const ParamLayout whole(c, ShardSpec::whole_model(c));
  for (int tp = 1; tp <= 4; tp *= 2) {
    for (const auto& v : whole.views()) {
      // The TP shards of a split tensor cover it exactly once; replicated ones are whole.
      int64_t covered = 0;
      for (int r = 0; r < tp; ++r) {
        ShardSpec s = ShardSpec::whole_model(c);
        s.tp_rank = r;
        s.tp_size = tp;
        const ParamLayout layout(c, s);
        const TensorView& sv = layout.get(v.name);
        EXPECT_EQ(sv.global_shape, v.global_shape);
        covered += static_cast<int64_t>(sv.numel);
        EXPECT_EQ(sv.primary, !sv.tp_replicated || r == 0) << v.name;
        EXPECT_EQ(sv.flat_offset % ParamLayout::kAlign, 0u);
      }
      const int64_t full = static_cast<int64_t>(v.numel);
      EXPECT_EQ(covered, v.tp_replicated ? full * tp : full) << v.name << " tp " << tp;
    }
  }
  EXPECT_TRUE(whole.get("h.0.attn.c_attn.weight").weight_decay);
  EXPECT_FALSE(whole.get("h.0.attn.c_attn.bias").weight_decay);  // rank 3, but a bias
  EXPECT_FALSE(whole.get("ln_f.weight").weight_decay);
  EXPECT_TRUE(whole.get("wte").weight_decay);
  expect_error([&] { whole.get("h.9.ln_1.weight"); }, {"'h.9.ln_1.weight' is not held"});
}

TEST(GPT2Errors, BadInputIsRefusedWithAClearMessage) {
  const ModelConfig c = small();
  SelfCommunicator tp("tp");
  expect_error([&] { make_model_stage(c, ShardSpec::whole_model(c), cpu_backend(), tp, 1, 9); },
               {"sequence length 9 is longer than the model's max_seq_len 8"});
  expect_error([&] { make_model_stage(c, ShardSpec::whole_model(c), cpu_backend(), tp, 0, 4); },
               {"micro-batch size"});
  auto model_stage = make_model_stage(c, ShardSpec::whole_model(c), cpu_backend(), tp, 1, 4);
  ModelStage& model = *model_stage;
  model.init_weights(1);
  std::vector<int32_t> tokens = {1, 2, 100, 3}, targets = {1, 2, 3, 4};
  expect_error([&] { model.forward(0, tokens.data(), targets.data(), nullptr); },
               {"token id 100 at position 2 is outside the vocabulary [0, 100)"});
  tokens[2] = 5;
  targets[0] = -1;
  expect_error([&] { model.forward(0, tokens.data(), targets.data(), nullptr); },
               {"target id -1 at position 0"});
  targets[0] = 99;  // the last real id is fine; padded ids 100..127 are not
  EXPECT_TRUE(std::isfinite(model.forward(0, tokens.data(), targets.data(), nullptr)));
}

TEST(GPT2Init, IsLayoutFreeAndGPT2Shaped) {
  ModelConfig c = small();
  c.n_head = 4;
  SelfCommunicator tp1("tp");
  auto whole_stage = make_model_stage(c, ShardSpec::whole_model(c), cpu_backend(), tp1, 1, 4);
  ModelStage& whole = *whole_stage;
  whole.init_weights(42);
  // Padded vocabulary rows start (and stay, having no gradient) at zero.
  const TensorView& wte = whole.layout().get("wte");
  for (size_t i = static_cast<size_t>(c.vocab_size) * c.n_embd; i < wte.numel; ++i)
    ASSERT_EQ(whole.params()[wte.flat_offset + i], 0.0f);
  // LayerNorm weights 1, biases 0, residual projections with the smaller std.
  EXPECT_EQ(whole.params()[whole.layout().get("h.1.ln_2.weight").flat_offset], 1.0f);
  EXPECT_EQ(whole.params()[whole.layout().get("h.1.mlp.c_fc.bias").flat_offset], 0.0f);
  auto std_of = [&](const std::string& name) {
    const TensorView& v = whole.layout().get(name);
    double ss = 0;
    for (size_t i = 0; i < v.numel; ++i)
      ss += static_cast<double>(whole.params()[v.flat_offset + i]) *
            whole.params()[v.flat_offset + i];
    return std::sqrt(ss / static_cast<double>(v.numel));
  };
  EXPECT_NEAR(std_of("h.0.mlp.c_fc.weight"), 0.02, 0.002);
  EXPECT_NEAR(std_of("h.0.mlp.c_proj.weight"), 0.02 / std::sqrt(4.0), 0.002);
  // A TP shard holds exactly the same values as that block of the whole model.
  ShardSpec s = ShardSpec::whole_model(c);
  s.tp_rank = 1;
  s.tp_size = 2;
  const ParamLayout shard(c, s);
  const TensorView& sv = shard.get("h.0.mlp.c_fc.weight");
  std::vector<float> vals(sv.numel);
  model_family("gpt2").init_tensor(vals.data(), sv, c, 42);
  const TensorView& wv = whole.layout().get("h.0.mlp.c_fc.weight");
  const size_t row = static_cast<size_t>(sv.local_shape[1]);
  for (size_t i = 0; i < sv.numel; ++i)
    ASSERT_EQ(vals[i],
              whole.params()[wv.flat_offset + (static_cast<size_t>(sv.offset[0]) + i / row) * row +
                             i % row]);
}
