// Every family against its reference fixture (tests/reference/): GPT-2 against plain PyTorch,
// Llama against transformers' LlamaForCausalLM (GQA with untied head; MQA with tied head;
// Llama 3.1's rope_scaling over positions past its original context).
// Logits and loss to 1e-5 relative, every parameter gradient to 1e-4 (max abs error over max
// abs value), and ten AdamW steps with warm-up, clipping, weight decay and 2-way gradient
// accumulation to 1e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fixture_h5.h"
#include "kernels/backend.h"
#include "model/model.h"
#include "parallel/mesh.h"
#include "parallel/mpi_comm.h"
#include "train/trainer.h"

using namespace shardlm;
using shardlm::testing::H5Fixture;
using shardlm::testing::max_rel_error;

namespace {

struct Fixture {
  const char* file;
  const char* family;
};

std::string fixture_path(const Fixture& fx) {
  return std::string(SHARDLM_TEST_DATA_DIR) + "/reference/" + fx.file;
}

ModelConfig fixture_config(const H5Fixture& f, const std::string& family) {
  ModelConfig c;
  c.family = family;
  if (family == "llama") {
    c.n_kv_head = f.attr_int("/", "n_kv_head");
    c.intermediate_size = f.attr_int("/", "intermediate_size");
    c.tie_embeddings = f.attr_int("/", "tie_embeddings");
    c.rope_theta = f.attr_double("/", "rope_theta");
    c.norm_eps = f.attr_double("/", "norm_eps");
    if (f.has_attr("/", "rope_scaling")) {  // Llama 3.1's rescaled RoPE frequencies
      c.rope_scaling = f.attr_string("/", "rope_scaling");
      c.rope_scaling_factor = f.attr_double("/", "rope_scaling_factor");
      c.rope_scaling_low_freq_factor = f.attr_double("/", "rope_scaling_low_freq_factor");
      c.rope_scaling_high_freq_factor = f.attr_double("/", "rope_scaling_high_freq_factor");
      c.rope_scaling_original_max_position_embeddings =
          f.attr_int("/", "rope_scaling_original_max_position_embeddings");
    }
  }
  c.n_layer = f.attr_int("/", "n_layer");
  c.n_head = f.attr_int("/", "n_head");
  c.n_embd = f.attr_int("/", "n_embd");
  c.vocab_size = f.attr_int("/", "vocab_size");
  c.max_seq_len = f.attr_int("/", "max_seq_len");
  return c;
}

// Copies /<group>/<name> into the model's flat buffer (wte is unpadded in the fixture).
void load_params(ModelStage& model, const H5Fixture& f, const std::string& group) {
  for (const auto& v : model.layout().views()) {
    std::vector<double> src = f.doubles(group + "/" + v.name);
    std::vector<float> dst(v.numel, 0.0f);
    ASSERT_LE(src.size(), dst.size()) << v.name;
    for (size_t i = 0; i < src.size(); ++i) dst[i] = static_cast<float>(src[i]);
    model.backend().copy_from_host(model.params() + v.flat_offset, dst.data(),
                                   v.numel * sizeof(float));
  }
}

std::vector<float> tensor(const ModelStage& model, const float* flat, const std::string& name,
                          size_t keep) {
  const TensorView& v = model.layout().get(name);
  std::vector<float> out(v.numel);
  const_cast<ModelStage&>(model).backend().copy_to_host(out.data(), flat + v.flat_offset,
                                                        v.numel * sizeof(float));
  out.resize(keep);  // drop padded vocabulary rows
  return out;
}

class Reference : public ::testing::TestWithParam<Fixture> {};

}  // namespace

TEST_P(Reference, ForwardAndBackwardMatch) {
  H5Fixture f(fixture_path(GetParam()));
  const ModelConfig cfg = fixture_config(f, GetParam().family);
  const int B = f.attr_int("/", "B"), T = f.attr_int("/", "T"), V = cfg.vocab_size;
  SelfCommunicator tp("tp");
  auto model_stage = make_model_stage(cfg, ShardSpec::whole_model(cfg), cpu_backend(), tp, B, T);
  ModelStage& model = *model_stage;
  load_params(model, f, "/params");
  const std::vector<int> tok = f.ints("/inputs/tokens"), tgt = f.ints("/inputs/targets");
  std::vector<int32_t> tokens(tok.begin(), tok.end()), targets(tgt.begin(), tgt.end());

  model.zero_grads();
  const float loss = model.forward(0, tokens.data(), targets.data(), nullptr);
  const double want_loss = f.doubles("/forward/loss")[0];
  EXPECT_NEAR(loss, want_loss, 1e-5 * want_loss);

  // Logits: [N, Vp] in the model, [N, V] in the fixture.
  const int N = B * T, Vp = cfg.padded_vocab();
  std::vector<float> padded(static_cast<size_t>(N) * Vp), logits(static_cast<size_t>(N) * V);
  model.backend().copy_to_host(padded.data(), model.logits(0), padded.size() * sizeof(float));
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < V; ++j)
      logits[static_cast<size_t>(n) * V + j] = padded[static_cast<size_t>(n) * Vp + j];
  EXPECT_LT(max_rel_error(logits, f.doubles("/forward/logits")), 1e-5);

  model.backward(0, 1.0f, nullptr);
  for (const auto& v : model.layout().views()) {
    const std::vector<double> want = f.doubles("/grads/" + v.name);
    const double err = max_rel_error(tensor(model, model.grads(), v.name, want.size()), want);
    EXPECT_LT(err, 1e-4) << "gradient of " << v.name;
  }
  // Padded vocabulary rows (what a tensor has beyond the fixture's) receive no gradient.
  int padded_tables = 0;
  for (const auto& v : model.layout().views()) {
    const size_t real = f.doubles("/params/" + v.name).size();
    if (real == v.numel) continue;
    ++padded_tables;
    std::vector<float> g(v.numel);
    model.backend().copy_to_host(g.data(), model.grads() + v.flat_offset, g.size() * sizeof(float));
    for (size_t i = real; i < g.size(); ++i) ASSERT_EQ(g[i], 0.0f) << v.name << " " << i;
  }
  EXPECT_GE(padded_tables, 1);
}

TEST_P(Reference, TenAdamWStepsMatch) {
  H5Fixture f(fixture_path(GetParam()));
  TrainSettings st;
  st.model = fixture_config(f, GetParam().family);
  const int B = f.attr_int("/", "B"), T = f.attr_int("/", "T");
  st.micro_batch = B;
  st.seq_len = T;
  st.micro_batches = f.attr_int("/train/hparams", "micro_batches");
  st.optim.lr = static_cast<float>(f.attr_double("/train/hparams", "max_lr"));
  st.optim.min_lr = static_cast<float>(f.attr_double("/train/hparams", "min_lr"));
  st.optim.warmup_steps = f.attr_int("/train/hparams", "warmup");
  st.optim.total_steps = f.attr_int("/train/hparams", "total_steps");
  st.optim.beta1 = static_cast<float>(f.attr_double("/train/hparams", "beta1"));
  st.optim.beta2 = static_cast<float>(f.attr_double("/train/hparams", "beta2"));
  st.optim.eps = static_cast<float>(f.attr_double("/train/hparams", "eps"));
  st.optim.weight_decay = static_cast<float>(f.attr_double("/train/hparams", "weight_decay"));
  st.optim.grad_clip = static_cast<float>(f.attr_double("/train/hparams", "grad_clip"));

  Mesh mesh(1, 1);
  Trainer trainer(st, mesh, cpu_backend());
  load_params(trainer.model(), f, "/params");

  // Samples are numbered step-major: step s, micro-batch m, row b = s*(M*B) + m*B + b.
  const std::vector<int> tok = f.ints("/train/tokens"), tgt = f.ints("/train/targets");
  BatchSource data = [&](uint64_t first, int count, int32_t* tokens, int32_t* targets) {
    for (int i = 0; i < count; ++i)
      for (int t = 0; t < T; ++t) {
        const size_t src =
            (first + static_cast<uint64_t>(i)) * static_cast<size_t>(T) + static_cast<size_t>(t);
        tokens[i * T + t] = tok[src];
        targets[i * T + t] = tgt[src];
      }
  };
  const std::vector<double> losses = f.doubles("/train/losses"),
                            norms = f.doubles("/train/grad_norms"), lrs = f.doubles("/train/lrs");
  const std::vector<int> clipped = f.ints("/train/clipped");
  int clipped_steps = 0;
  for (int s = 0; s < st.optim.total_steps; ++s) {
    const StepResult r = trainer.train_step(s, data);
    EXPECT_NEAR(r.loss, losses[static_cast<size_t>(s)], 1e-4 * losses[static_cast<size_t>(s)])
        << "step " << s;
    EXPECT_NEAR(r.grad_norm, norms[static_cast<size_t>(s)], 1e-4 * norms[static_cast<size_t>(s)])
        << "step " << s;
    EXPECT_NEAR(r.lr, lrs[static_cast<size_t>(s)], 1e-6 * lrs[static_cast<size_t>(s)])
        << "step " << s;
    EXPECT_EQ(r.clipped ? 1 : 0, clipped[static_cast<size_t>(s)]) << "step " << s;
    clipped_steps += r.clipped;
  }
  EXPECT_GT(clipped_steps, 0);
  EXPECT_LT(clipped_steps, st.optim.total_steps);

  const ModelStage& model = trainer.model();
  for (const auto& v : model.layout().views()) {
    std::vector<double> want = f.doubles("/train/params_after/" + v.name);
    std::vector<float> got = tensor(model, model.params(), v.name, want.size());
    if (v.name.find("attn.c_attn.bias") != std::string::npos) {
      // The k part of the qkv bias has an exactly-zero true gradient (softmax is invariant to
      // it); in fp32 Adam can turn rounding noise into visible steps. Compared separately, absolute
      // (measured: 8e-6 after 10 steps at lr 1e-2).
      const size_t third = want.size() / 3;
      std::vector<double> want_k(want.begin() + static_cast<long>(third),
                                 want.begin() + static_cast<long>(2 * third));
      for (size_t i = 0; i < third; ++i) EXPECT_NEAR(got[third + i], want_k[i], 1e-4) << v.name;
      want.erase(want.begin() + static_cast<long>(third),
                 want.begin() + static_cast<long>(2 * third));
      got.erase(got.begin() + static_cast<long>(third), got.begin() + static_cast<long>(2 * third));
    }
    EXPECT_LT(max_rel_error(got, want), 1e-4) << "weights after 10 steps: " << v.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, Reference,
                         ::testing::Values(Fixture{"gpt2_fixture.h5", "gpt2"},
                                           Fixture{"llama_fixture.h5", "llama"},
                                           Fixture{"llama_fixture_mqa_tied.h5", "llama"},
                                           Fixture{"llama_fixture_rope_scaling.h5", "llama"}),
                         [](const auto& info) {
                           std::string n = info.param.file;
                           n = n.substr(0, n.find('.'));
                           return n;
                         });
