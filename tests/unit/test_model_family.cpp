// The model seam: tensor plans become view tables (tied copies, TP splits), the family
// registry, GPT-2's plan against its parameter and FLOP counts, and the parallel/ pieces a
// stage is built from (TensorParallel, GradientSync, HostStaged) on one process.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kernels/backend.h"
#include "kernels/host_staging.h"
#include "model/family.h"
#include "model/generator.h"
#include "model/model.h"
#include "model/param_layout.h"
#include "parallel/data_parallel.h"
#include "parallel/self_comm.h"
#include "parallel/tensor_parallel.h"
#include "support_errors.h"

namespace shardlm {
namespace {

using testing::expect_error;

// A toy plan: an embedding tied to the last stage, one block tensor per layer, a head norm.
TensorPlan toy_plan(int layers) {
  TensorPlan plan;
  plan.push_back({"emb", {8, 4}, 0, true, StagePlacement::kFirstStage, -1, true});
  for (int l = 0; l < layers; ++l)
    plan.push_back({layer_param_name(l, "w"), {4, 6}, 1, true, StagePlacement::kLayer, l, false});
  plan.push_back(
      {"norm", {4}, TensorSpec::kReplicated, false, StagePlacement::kLastStage, -1, false});
  return plan;
}

std::vector<std::string> names(const ParamLayout& layout) {
  std::vector<std::string> out;
  for (const auto& v : layout.views()) out.push_back(v.name);
  return out;
}

TEST(ParamLayoutFromPlan, OneStageHoldsATiedTensorOnce) {
  ShardSpec whole;
  whole.layer_end = 2;
  const ParamLayout layout(toy_plan(2), whole);
  EXPECT_EQ(names(layout), (std::vector<std::string>{"emb", "h.0.w", "h.1.w", "norm"}));
  EXPECT_FALSE(layout.get("emb").tied_across_stages);
  EXPECT_TRUE(layout.get("emb").primary);
}

TEST(ParamLayoutFromPlan, SplitStagesHoldTiedCopiesAtTheEnd) {
  ShardSpec first, last;
  first.layer_end = 1;
  first.last_stage = false;
  last.layer_begin = 1;
  last.layer_end = 2;
  last.first_stage = false;
  const ParamLayout a(toy_plan(2), first), b(toy_plan(2), last);
  EXPECT_EQ(names(a), (std::vector<std::string>{"emb", "h.0.w"}));
  EXPECT_EQ(names(b), (std::vector<std::string>{"h.1.w", "norm", "emb"}));
  EXPECT_TRUE(a.get("emb").tied_across_stages);
  EXPECT_TRUE(a.get("emb").primary);
  EXPECT_TRUE(b.get("emb").tied_across_stages);
  EXPECT_FALSE(b.get("emb").primary);  // the first stage's copy is the one that counts
  for (const auto* l : {&a, &b})
    for (const auto& v : l->views()) EXPECT_EQ(v.flat_offset % ParamLayout::kAlign, 0u);
}

TEST(ParamLayoutFromPlan, TensorParallelBlocksAndRefusals) {
  ShardSpec s;
  s.layer_end = 1;
  s.tp_size = 2;
  s.tp_rank = 1;
  const ParamLayout layout(toy_plan(1), s);
  const TensorView& w = layout.get("h.0.w");
  EXPECT_EQ(w.local_shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(w.offset, (std::vector<int64_t>{0, 3}));
  EXPECT_FALSE(layout.get("norm").primary);  // replicated, tp rank 1
  s.tp_size = 4;
  s.tp_rank = 0;
  expect_error([&] { ParamLayout(toy_plan(1), s); },
               {"tensor h.0.w", "dimension 1 (6)", "not divisible by tp 4"});
}

TEST(ModelFamilies, RegistryNamesTheKnownFamilies) {
  EXPECT_EQ(model_family("gpt2").name(), "gpt2");
  expect_error([] { model_family("mamba"); }, {"unknown model family 'mamba'", "gpt2"});
  ModelConfig c = model_preset("tiny");
  c.family = "mamba";
  expect_error([&] { c.validate(); }, {"mamba"});
  EXPECT_EQ(model_preset("gpt2-xl").family, "gpt2");
  EXPECT_EQ(model_preset("llama-3-8b").family, "llama");
}

// The plan, the parameter count and the FLOP count are three statements of one model.
TEST(Gpt2Family, PlanAgreesWithParameterAndFlopCounts) {
  const ModelFamily& gpt2 = model_family("gpt2");
  for (const auto& [name, cfg] : gpt2.presets()) {
    int64_t plan_elements = 0;
    for (const auto& t : gpt2.tensor_plan(cfg))
      plan_elements +=
          std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<int64_t>());
    const int64_t padding = int64_t{cfg.padded_vocab() - cfg.vocab_size} * cfg.n_embd;
    EXPECT_EQ(plan_elements - padding, gpt2.num_parameters(cfg)) << name;
    const int T = cfg.max_seq_len;
    const double expected =
        6.0 * (gpt2.num_parameters(cfg) - static_cast<double>(cfg.max_seq_len) * cfg.n_embd) +
        6.0 * cfg.n_layer * T * cfg.n_embd;
    EXPECT_DOUBLE_EQ(gpt2.flops_per_token(cfg, T), expected) << name;
  }
}

TEST(Gpt2Family, TensorParallelRulesNameTheValue) {
  const ModelFamily& gpt2 = model_family("gpt2");
  ModelConfig c = model_preset("tiny");  // 4 heads, C 128, vocab 8192
  EXPECT_EQ(gpt2.tensor_parallel_problem(c, 4), "");
  EXPECT_EQ(gpt2.tensor_parallel_problem(c, 3), "n_head 4 is not divisible by tp");
  c.vocab_size = 90;
  c.vocab_pad_multiple = 45;
  EXPECT_NE(gpt2.tensor_parallel_problem(c, 4).find("padded vocabulary 90 (vocab_size 90"),
            std::string::npos);
  c = model_preset("tiny");
  // A stage is refused before it allocates anything.
  SelfCommunicator tp("tp");
  ShardSpec s = ShardSpec::whole_model(c);
  s.tp_size = 3;
  expect_error([&] { make_model_stage(c, s, cpu_backend(), tp, 1, 4); },
               {"n_head 4 is not divisible by tp 3"});
}

TEST(ModelWeights, InitIsTheFamilysRuleOnEveryView) {
  const ModelConfig c = model_preset("tiny");
  ModelWeights w(model_family("gpt2"), c, ShardSpec::whole_model(c), cpu_backend(), 0, false);
  EXPECT_EQ(w.grads(), nullptr);
  w.init(5);
  std::vector<float> expected;
  for (const auto& v : w.layout().views()) {
    expected.assign(v.numel, -1.0f);
    model_family("gpt2").init_tensor(expected.data(), v, c, 5);
    for (size_t i = 0; i < v.numel; ++i)
      ASSERT_EQ(w.params()[v.flat_offset + i], expected[i]) << v.name << " " << i;
  }
}

TEST(TensorParallelOperators, AreNoOpsOnOneRank) {
  SelfCommunicator self("tp");
  TensorParallel tp(self);
  std::vector<float> x = {1.5f, -2.0f};
  tp.reduce_from_region(x.data(), 2);
  tp.copy_to_region_backward(x.data(), 2);
  tp.max_over_vocab(x.data(), 2);
  EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));
}

TEST(GradientSyncRules, OneRankWithAndWithoutZero) {
  EXPECT_EQ(GradientSync::padded_flat_size(33, 2, 16), 64u);
  EXPECT_EQ(GradientSync::padded_flat_size(32, 2, 16), 32u);
  SelfCommunicator dp("dp");
  KernelBackend& be = cpu_backend();
  FlatBuffer params(be, 32, MemoryRole::Parameters), grads(be, 32, MemoryRole::Gradients);
  std::vector<float> host(32);
  std::iota(host.begin(), host.end(), 1.0f);
  grads.store(0, host.data(), 32);
  GradientSync plain(dp, be, 32, 0, {});
  plain.bind(params, grads);
  EXPECT_EQ(plain.shard_begin(), 0u);
  EXPECT_EQ(plain.shard_end(), 32u);
  plain.reduce();
  EXPECT_EQ(plain.shard_grads(), grads.at(0, 32));  // in place, nothing to average
  EXPECT_TRUE(plain.writes_params() && plain.writes_optimizer_state());
  // ZeRO-1 with dp = 1: the reduce-scatter is a copy into the shard buffer.
  GradientSync zero(dp, be, 32, 1, {});
  zero.bind(params, grads);
  zero.reduce();
  const float* shard = zero.shard_grads();
  EXPECT_NE(shard, grads.at(0, 32));
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(shard[i], host[i]);
  EXPECT_TRUE(zero.counts_in_grad_norm());
  expect_error([&] { GradientSync(dp, be, 32, 4, {}); },
               {"ZeRO stage must be 0, 1, 2 or 3, got 4"});
}

TEST(HostStagedView, IsTheBufferItselfOnTheCpu) {
  KernelBackend& be = cpu_backend();
  float* p = be.alloc_floats(4);
  HostStaged rw(be, p, 4, HostStaged::Mode::ReadWrite);
  EXPECT_EQ(rw.data(), p);
  rw.data()[1] = 3.0f;
  rw.flush();
  EXPECT_EQ(p[1], 3.0f);
  const float* cp = p;
  HostStaged ro(be, cp, 4);
  expect_error([&] { ro.flush(); }, {"read-only"});
  be.free_memory(p);
}

TEST(KernelBackendAlloc, CarriesTheDtype) {
  KernelBackend& be = cpu_backend();
  auto* h = be.alloc_array<bf16>(3);
  EXPECT_EQ(h[2].bits, 0);  // zero-filled
  be.free_memory(h);
  expect_error([&] { be.alloc(SIZE_MAX / 2, DType::F32); }, {"too many f32 elements"});
}

// The family-generic generator runs the family's decoder.
TEST(GeneratorOverFamily, BuildsTheFamilysDecoder) {
  ModelConfig c = model_preset("tiny");
  c.n_layer = 1;
  c.vocab_size = 64;
  c.max_seq_len = 8;
  Generator gen(c, cpu_backend());
  gen.weights().init(1);
  const auto& logits = gen.prefill({1, 2, 3});
  ASSERT_EQ(logits.size(), 64u);
  EXPECT_EQ(gen.position(), 3);
  gen.step(4);
  EXPECT_EQ(gen.position(), 4);
}

}  // namespace
}  // namespace shardlm

namespace shardlm {
namespace {

// The Llama presets against the parameter counts their published checkpoints have (the sum of
// every tensor in model.safetensors of each Hugging Face release).
TEST(LlamaFamily, PresetsHaveThePublishedParameterCounts) {
  const std::pair<const char*, int64_t> published[] = {
      {"smollm2-135m", 134515008}, {"llama-3.2-1b", 1235814400}, {"llama-3.2-3b", 3212749824},
      {"llama-3-8b", 8030261248},  {"llama-3-70b", 70553706496}, {"llama-3.1-405b", 405853388800},
  };
  for (const auto& [name, count] : published) {
    const ModelConfig c = model_preset(name);
    EXPECT_EQ(c.family, "llama") << name;
    EXPECT_NO_THROW(c.validate()) << name;
    EXPECT_EQ(c.num_parameters(), count) << name;
  }
  // The plan agrees with the count (the padded vocabulary rows aside).
  for (const char* name : {"llama-tiny", "smollm2-135m"}) {
    const ModelConfig c = model_preset(name);
    int64_t elements = 0;
    for (const auto& t : model_family("llama").tensor_plan(c))
      elements +=
          std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<int64_t>());
    const int64_t tables = c.tie_embeddings ? 1 : 2;
    EXPECT_EQ(elements - tables * (c.padded_vocab() - c.vocab_size) * c.n_embd, c.num_parameters())
        << name;
  }
}

TEST(LlamaFamily, ConfigAndLayoutRefusalsNameTheValues) {
  ModelConfig c = model_preset("llama-tiny");  // 4 heads over 2 kv heads, head_dim 32
  c.n_kv_head = 3;
  expect_error([&] { c.validate(); }, {"n_head (4)", "n_kv_head (3)"});
  c = model_preset("llama-tiny");
  c.n_embd = 4 * 33;  // head_dim 33
  expect_error([&] { c.validate(); }, {"head_dim 33", "even"});
  c = model_preset("llama-tiny");
  c.intermediate_size = 0;
  expect_error([&] { c.validate(); }, {"intermediate_size"});
  c = model_preset("llama-tiny");
  EXPECT_EQ(model_family("llama").tensor_parallel_problem(c, 2), "");
  EXPECT_NE(model_family("llama").tensor_parallel_problem(c, 4).find("n_kv_head 2"),
            std::string::npos);
  // The optional keys round-trip through the [model] section.
  c.rope_theta = 500000.0;
  c.norm_eps = 1e-6;
  c.tie_embeddings = 1;
  EXPECT_EQ(model_config_from_ini(model_config_to_ini(c)), c);
}

}  // namespace
}  // namespace shardlm
