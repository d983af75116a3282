// --recompute selective and full give the losses and gradients of --recompute none bit for bit
// on the CPU backend, for both families, with two micro-batch slots in flight (as under 1F1B:
// forward, forward, backward, backward), while keeping fewer activation bytes per layer.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/model.h"
#include "model/recompute.h"
#include "parallel/self_comm.h"
#include "support_errors.h"

using namespace shardlm;
using shardlm::testing::expect_error;

namespace {

constexpr int kB = 2, kT = 8;

ModelConfig gpt2_config() {
  ModelConfig c;
  c.n_layer = 3;
  c.n_head = 2;
  c.n_embd = 16;
  c.vocab_size = 100;
  c.max_seq_len = kT;
  return c;
}

ModelConfig llama_config() {
  ModelConfig c = model_preset("llama-tiny");
  c.n_layer = 3;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 32;
  c.intermediate_size = 48;
  c.vocab_size = 100;
  c.max_seq_len = kT;
  return c;
}

struct Outcome {
  std::vector<float> losses, grads;
  size_t kept = 0, shared = 0;
};

Outcome train_two_micro_batches(const ModelConfig& c, Recompute mode) {
  SelfCommunicator tp("tp");
  auto stage = make_model_stage(c, ShardSpec::whole_model(c), cpu_backend(), tp, kB, kT,
                                /*slots=*/2, /*flat_capacity=*/0, mode);
  stage->init_weights(11);
  stage->zero_grads();
  std::vector<int32_t> tokens[2], targets[2];
  for (int s = 0; s < 2; ++s)
    for (int i = 0; i < kB * kT; ++i) {
      tokens[s].push_back((7 * i + 13 * s + 3) % c.vocab_size);
      targets[s].push_back((5 * i + 11 * s + 1) % c.vocab_size);
    }
  Outcome o;
  for (int s = 0; s < 2; ++s)
    o.losses.push_back(stage->forward(s, tokens[s].data(), targets[s].data(), nullptr));
  for (int s = 0; s < 2; ++s) stage->backward(s, 0.5f, nullptr);
  o.grads.assign(stage->grads(), stage->grads() + stage->layout().total());
  o.kept = stage->kept_activation_bytes();
  o.shared = stage->shared_activation_bytes();
  return o;
}

void expect_same_training(const ModelConfig& c) {
  const Outcome none = train_two_micro_batches(c, Recompute::None);
  // kept bytes cover n_layer layers x 2 slots.
  const size_t per_layer_none = none.kept / (2 * c.n_layer);
  std::cout << c.family << " activation bytes per layer and micro-batch (B " << kB << ", T " << kT
            << "): none " << per_layer_none;
  for (const Recompute mode : {Recompute::Selective, Recompute::Full}) {
    const Outcome r = train_two_micro_batches(c, mode);
    ASSERT_EQ(r.losses.size(), none.losses.size());
    for (size_t i = 0; i < r.losses.size(); ++i)
      EXPECT_EQ(std::memcmp(&r.losses[i], &none.losses[i], sizeof(float)), 0)
          << recompute_name(mode) << " loss of slot " << i;
    ASSERT_EQ(r.grads.size(), none.grads.size());
    size_t differing = 0;
    for (size_t i = 0; i < r.grads.size(); ++i)
      differing += std::memcmp(&r.grads[i], &none.grads[i], sizeof(float)) != 0;
    EXPECT_EQ(differing, 0u) << recompute_name(mode) << ": gradients differ from none";
    EXPECT_LT(r.kept, none.kept) << recompute_name(mode);
    EXPECT_GT(r.shared, 0u) << recompute_name(mode);
    std::cout << ", " << recompute_name(mode) << " " << r.kept / (2 * c.n_layer) << " (+"
              << r.shared << " shared by all layers)";
    if (mode == Recompute::Full) EXPECT_EQ(r.kept, 0u);  // only block inputs, not counted here
  }
  std::cout << "\n";
  EXPECT_EQ(none.shared, 0u);
}

}  // namespace

TEST(Recompute, Gpt2SelectiveAndFullMatchNoneBitForBit) {
  expect_same_training(gpt2_config());
}

TEST(Recompute, LlamaSelectiveAndFullMatchNoneBitForBit) {
  expect_same_training(llama_config());
}

TEST(Recompute, ModesParseByName) {
  EXPECT_EQ(parse_recompute("none"), Recompute::None);
  EXPECT_EQ(parse_recompute("selective"), Recompute::Selective);
  EXPECT_EQ(parse_recompute("full"), Recompute::Full);
  for (const Recompute m : {Recompute::None, Recompute::Selective, Recompute::Full})
    EXPECT_EQ(parse_recompute(recompute_name(m)), m);
  expect_error([] { parse_recompute("some"); }, {"none, selective or full", "'some'"});
}

TEST(Recompute, SelectiveKeepsOnlyInternals) {
  EXPECT_TRUE(keeps(Recompute::None, ActivationRole::Attention));
  EXPECT_FALSE(keeps(Recompute::Selective, ActivationRole::Attention));
  EXPECT_FALSE(keeps(Recompute::Selective, ActivationRole::Nonlinearity));
  EXPECT_TRUE(keeps(Recompute::Selective, ActivationRole::Internal));
  EXPECT_FALSE(keeps(Recompute::Full, ActivationRole::Internal));
}
