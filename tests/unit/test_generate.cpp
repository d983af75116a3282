// Generation (model/generator.h): the KV-cached decode reproduces the training stage's logits at
// every position, cached and full-recompute generation give the same tokens, the sampler's
// greedy / top-k / top-p rules, the stop conditions and input errors, the [model] INI section,
// and loading a checkpoint written by the trainer (train/generation_loader.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "data_test_support.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/generator.h"
#include "model/model.h"
#include "parallel/mesh.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"
#include "train/checkpointing.h"
#include "train/generation_loader.h"
#include "train/trainer.h"

using namespace shardlm;

namespace shardlm {
// GoogleTest prints test parameters with this (found by argument-dependent lookup).
void PrintTo(const ModelConfig& cfg, std::ostream* os) {
  *os << "n_layer " << cfg.n_layer << ", n_head " << cfg.n_head << ", n_embd " << cfg.n_embd
      << ", vocab " << cfg.vocab_size << ", max_seq_len " << cfg.max_seq_len;
}
}  // namespace shardlm

namespace {

ModelConfig small_config(int n_layer, int n_head, int n_embd, int vocab, int max_seq) {
  ModelConfig c;
  c.n_layer = n_layer;
  c.n_head = n_head;
  c.n_embd = n_embd;
  c.vocab_size = vocab;
  c.max_seq_len = max_seq;
  return c;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = dist(rng);
  return t;
}

// max |got - want| / max |want| over one row.
double row_rel_error(const std::vector<float>& got, const float* want) {
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  return err / scale;
}

// Expects `fn` to throw shardlm::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

// ---- the KV-cache kernels ---------------------------------------------------------------------

// Appending a sequence to the cache in chunks (one decode step is a chunk of 1) and attending
// each chunk's queries over the cache gives attention_forward's output, row for row.
TEST(KvCacheKernels, ChunkedDecodeMatchesAttentionForward) {
  KernelBackend& be = cpu_backend();
  for (const auto& shape : std::vector<std::pair<int, int>>{{4, 16}, {3, 18}, {2, 64}}) {
    // Plain ints, not structured bindings: clang 14 (the sanitizer build) cannot capture those.
    const int NH = shape.first, hd = shape.second;
    const int T = 37, max_seq = 40, C = NH * hd;
    std::mt19937 rng(static_cast<uint32_t>(NH * 100 + hd));
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> qkv(static_cast<size_t>(T) * 3 * C);
    for (auto& x : qkv) x = dist(rng);
    std::vector<float> want(static_cast<size_t>(T) * C), lse(static_cast<size_t>(NH) * T);
    be.attention_forward(want.data(), lse.data(), qkv.data(), 1, T, NH, hd);

    std::vector<float> k_cache(static_cast<size_t>(NH) * max_seq * hd), v_cache(k_cache.size());
    std::vector<float> got(want.size());
    int pos = 0;
    for (int chunk : {5, 1, 1, 9, 1, 20}) {
      const float* rows = qkv.data() + static_cast<size_t>(pos) * 3 * C;
      be.kv_cache_append(k_cache.data(), v_cache.data(), rows, pos, chunk, NH, hd, max_seq);
      be.attention_decode(got.data() + static_cast<size_t>(pos) * C, rows, k_cache.data(),
                          v_cache.data(), pos, chunk, NH, hd, max_seq);
      pos += chunk;
    }
    ASSERT_EQ(pos, T);
    double err = 0.0;
    for (size_t i = 0; i < want.size(); ++i)
      err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    EXPECT_LT(err, 1e-5) << "NH " << NH << " hd " << hd;
    // The cache holds k and v by head and position.
    EXPECT_EQ(k_cache[(static_cast<size_t>(1) * max_seq + 7) * hd + 2],
              qkv[static_cast<size_t>(7) * 3 * C + C + hd + 2]);
    EXPECT_EQ(v_cache[(static_cast<size_t>(1) * max_seq + 7) * hd + 2],
              qkv[static_cast<size_t>(7) * 3 * C + 2 * C + hd + 2]);
    expect_error(
        [&] {
          be.kv_cache_append(k_cache.data(), v_cache.data(), qkv.data(), 38, 3, NH, hd, max_seq);
        },
        {"[38, 41)", "40 positions"});
  }
}

// ---- cached decode == training forward ------------------------------------------------------

class DecodeMatchesForward : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(DecodeMatchesForward, LogitsAtEveryPosition) {
  const ModelConfig cfg = GetParam();
  const int L = cfg.max_seq_len, V = cfg.vocab_size, Vp = cfg.padded_vocab();
  KernelBackend& be = cpu_backend();
  SelfCommunicator tp("tp");
  auto reference_stage = make_model_stage(cfg, ShardSpec::whole_model(cfg), be, tp, 1, L);
  ModelStage& reference = *reference_stage;
  reference.init_weights(7);
  Generator gen(cfg, be);
  gen.weights().init(7);

  const std::vector<int32_t> tokens = random_tokens(L, V, 11);
  reference.forward(0, tokens.data(), tokens.data(), nullptr);
  std::vector<float> want(static_cast<size_t>(L) * Vp);
  be.copy_to_host(want.data(), reference.logits(0), want.size() * sizeof(float));
  const auto row = [&](int t) { return want.data() + static_cast<size_t>(t) * Vp; };

  // One token at a time: every position through the cache.
  ASSERT_EQ(gen.prefill({tokens[0]}).size(), static_cast<size_t>(V));
  EXPECT_LT(row_rel_error(gen.prefill({tokens[0]}), row(0)), 1e-5);
  for (int t = 1; t < L; ++t) {
    EXPECT_LT(row_rel_error(gen.step(tokens[static_cast<size_t>(t)]), row(t)), 1e-5)
        << "position " << t;
    EXPECT_EQ(gen.position(), t + 1);
  }
  // A prompt chunk, then steps: the cache written by a multi-token prefill is the same.
  const int chunk = L / 2 + 1;
  const std::vector<int32_t> head(tokens.begin(), tokens.begin() + chunk);
  EXPECT_LT(row_rel_error(gen.prefill(head), row(chunk - 1)), 1e-5);
  for (int t = chunk; t < L; ++t)
    EXPECT_LT(row_rel_error(gen.step(tokens[static_cast<size_t>(t)]), row(t)), 1e-5)
        << "position " << t;
  // The whole sequence at once (what generation without the cache runs).
  EXPECT_LT(row_rel_error(gen.prefill(tokens), row(L - 1)), 1e-5);
}

// Llama: grouped-query attention with a cache of n_kv_head heads and RoPE at every position.
ModelConfig llama_config(int n_layer, int n_head, int n_kv_head, int n_embd, int F, int vocab,
                         int max_seq, int tied) {
  ModelConfig c = small_config(n_layer, n_head, n_embd, vocab, max_seq);
  c.family = "llama";
  c.n_kv_head = n_kv_head;
  c.intermediate_size = F;
  c.tie_embeddings = tied;
  return c;
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecodeMatchesForward,
                         ::testing::Values(small_config(2, 4, 64, 300, 24),  // head size 16
                                           small_config(1, 3, 54, 97,
                                                        40),  // head size 18: ragged vectors
                                           llama_config(2, 6, 2, 36, 40, 101, 20, 0),  // GQA
                                           llama_config(1, 4, 1, 24, 20, 97, 17, 1)),  // MQA, tied
                         [](const auto& info) { return "case" + std::to_string(info.index); });

// ---- generation: cached vs full recompute, determinism, stops --------------------------------

class GenerateTest : public ::testing::Test {
 protected:
  GenerateTest() : cfg_(small_config(2, 4, 64, 300, 40)), gen_(cfg_, cpu_backend()) {
    gen_.weights().init(3);
  }
  GenerateResult run(const SamplingOptions& sampling, bool cache, int max_tokens = 25,
                     const std::vector<int32_t>& prompt = {5, 17, 42, 8}, int eos = -1) {
    GenerateOptions o;
    o.sampling = sampling;
    o.use_kv_cache = cache;
    o.max_tokens = max_tokens;
    o.eos_id = eos;
    return gen_.generate(prompt, o);
  }
  ModelConfig cfg_;
  Generator gen_;
};

SamplingOptions sampling(float temperature, int top_k, float top_p, uint64_t seed) {
  SamplingOptions s;
  s.temperature = temperature;
  s.top_k = top_k;
  s.top_p = top_p;
  s.seed = seed;
  return s;
}

TEST_F(GenerateTest, CachedAndRecomputedGiveTheSameTokens) {
  for (const SamplingOptions& s :
       {sampling(1.0f, 0, 1.0f, 1), sampling(1.0f, 20, 1.0f, 2), sampling(1.0f, 0, 0.9f, 3),
        sampling(0.7f, 50, 0.8f, 4), sampling(0.0f, 0, 1.0f, 5)}) {
    SCOPED_TRACE("temperature " + std::to_string(s.temperature) + " top-k " +
                 std::to_string(s.top_k) + " top-p " + std::to_string(s.top_p));
    const GenerateResult cached = run(s, true), recomputed = run(s, false);
    EXPECT_EQ(cached.tokens.size(), 25u);
    EXPECT_EQ(cached.tokens, recomputed.tokens);
    EXPECT_EQ(cached.stop, StopReason::MaxTokens);
    EXPECT_EQ(recomputed.stop, StopReason::MaxTokens);
    EXPECT_EQ(run(s, true).tokens, cached.tokens);  // deterministic for a seed
  }
}

TEST_F(GenerateTest, SeedsAndTemperatureMatter) {
  const auto a = run(sampling(1.0f, 0, 1.0f, 1), true).tokens;
  const auto b = run(sampling(1.0f, 0, 1.0f, 2), true).tokens;
  EXPECT_NE(a, b);
  // Greedy ignores the seed.
  EXPECT_EQ(run(sampling(0.0f, 0, 1.0f, 1), true).tokens,
            run(sampling(0.0f, 0, 1.0f, 99), true).tokens);
  // top-k = 1 and a tiny top-p keep only the most likely token: greedy, whatever the temperature.
  const auto greedy = run(sampling(0.0f, 0, 1.0f, 1), true).tokens;
  EXPECT_EQ(run(sampling(1.5f, 1, 1.0f, 8), true).tokens, greedy);
  EXPECT_EQ(run(sampling(1.5f, 0, 1e-6f, 8), false).tokens, greedy);
}

TEST_F(GenerateTest, StopsAtContextEosAndMaxTokens) {
  // 4 prompt tokens + 36 generated fill the 40 positions.
  for (bool cache : {true, false}) {
    const GenerateResult full = run(sampling(1.0f, 0, 1.0f, 6), cache, 1000);
    EXPECT_EQ(full.stop, StopReason::ContextFull);
    EXPECT_EQ(full.tokens.size(), 36u);
  }
  const SamplingOptions s = sampling(1.0f, 0, 1.0f, 6);
  const GenerateResult free = run(s, true, 10);
  ASSERT_EQ(free.tokens.size(), 10u);
  // EOS = the first token that was not sampled before it: the ones before it come out, EOS
  // itself does not.
  size_t first_new = 1;
  while (first_new < free.tokens.size() &&
         std::count(free.tokens.begin(), free.tokens.begin() + first_new, free.tokens[first_new]))
    ++first_new;
  ASSERT_LT(first_new, free.tokens.size());
  for (bool cache : {true, false}) {
    const GenerateResult eos = run(s, cache, 10, {5, 17, 42, 8}, free.tokens[first_new]);
    EXPECT_EQ(eos.stop, StopReason::Eos);
    EXPECT_EQ(eos.tokens,
              std::vector<int32_t>(free.tokens.begin(), free.tokens.begin() + first_new));
  }
  const GenerateResult none = run(sampling(0.0f, 0, 1.0f, 0), true, 0);
  EXPECT_TRUE(none.tokens.empty());
  EXPECT_EQ(none.stop, StopReason::MaxTokens);
  // A prompt one short of the context: exactly one token fits.
  const GenerateResult last = run(sampling(1.0f, 0, 1.0f, 0), true, 5, random_tokens(39, 300, 1));
  EXPECT_EQ(last.tokens.size(), 1u);
  EXPECT_EQ(last.stop, StopReason::ContextFull);
}

TEST_F(GenerateTest, BadInputsAreClearErrors) {
  const SamplingOptions s = sampling(1.0f, 0, 1.0f, 0);
  expect_error([&] { run(s, true, 5, {}); }, {"prompt is empty"});
  expect_error([&] { run(s, true, 5, random_tokens(41, 300, 1)); },
               {"41 tokens", "max_seq_len of 40"});
  expect_error([&] { run(s, false, 5, random_tokens(40, 300, 1)); },
               {"40 tokens", "max_seq_len of 40"});
  expect_error([&] { run(s, true, 5, {1, 300}); }, {"token id 300", "position 1", "[0, 300)"});
  expect_error([&] { run(s, true, 5, {1, -2}); }, {"token id -2"});
  expect_error([&] { run(s, true, -1); }, {"max tokens"});
  expect_error([&] { gen_.prefill({}); }, {"empty"});
  expect_error([&] { gen_.prefill(random_tokens(41, 300, 1)); }, {"41 tokens", "max_seq_len 40"});

  Generator fresh(cfg_, cpu_backend());
  expect_error([&] { fresh.step(1); }, {"prefill first"});
  fresh.prefill(random_tokens(40, 300, 2));
  expect_error([&] { fresh.step(1); }, {"context is full"});
}

// ---- the sampler ----------------------------------------------------------------------------

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  Sampler greedy(sampling(0.0f, 0, 1.0f, 0)), top1(sampling(2.0f, 1, 1.0f, 1)),
      nucleus(sampling(2.0f, 0, 1e-7f, 2));
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(50);
    for (auto& x : logits) x = std::round(dist(rng));  // rounded: many ties
    const int32_t want = greedy.sample(logits.data(), 50);
    EXPECT_EQ(want, std::max_element(logits.begin(), logits.end()) -
                        logits.begin());  // lowest id on ties
    EXPECT_EQ(top1.sample(logits.data(), 50), want);
    EXPECT_EQ(nucleus.sample(logits.data(), 50), want);
  }
}

// Frequencies of `draws` samples.
std::map<int32_t, int> histogram(const SamplingOptions& s, const std::vector<float>& logits,
                                 int draws) {
  Sampler sampler(s);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i)
    ++counts[sampler.sample(logits.data(), static_cast<int>(logits.size()))];
  return counts;
}

TEST(Sampler, DrawsFollowTheTruncatedDistribution) {
  // Probabilities 0.1, 0.5, 0.2, 0.15, 0.05 (ids 0..4).
  const std::vector<double> p = {0.1, 0.5, 0.2, 0.15, 0.05};
  std::vector<float> logits;
  for (double x : p) logits.push_back(static_cast<float>(std::log(x)));
  const int draws = 40000;
  const auto expect_freqs = [&](const std::map<int32_t, int>& counts,
                                const std::map<int32_t, double>& want) {
    for (const auto& [id, n] : counts)
      EXPECT_TRUE(want.count(id)) << "id " << id << " drawn " << n << " times";
    for (const auto& [id, prob] : want) {
      const double freq = counts.count(id) ? counts.at(id) / static_cast<double>(draws) : 0.0;
      EXPECT_NEAR(freq, prob, 0.01) << "id " << id;
    }
  };
  expect_freqs(histogram(sampling(1.0f, 0, 1.0f, 1), logits, draws),
               {{0, 0.1}, {1, 0.5}, {2, 0.2}, {3, 0.15}, {4, 0.05}});
  // top-k 2: ids 1 and 2, renormalised.
  expect_freqs(histogram(sampling(1.0f, 2, 1.0f, 2), logits, draws),
               {{1, 0.5 / 0.7}, {2, 0.2 / 0.7}});
  // top-p: the fewest most likely tokens reaching p.
  expect_freqs(histogram(sampling(1.0f, 0, 0.45f, 3), logits, draws), {{1, 1.0}});
  expect_freqs(histogram(sampling(1.0f, 0, 0.69f, 4), logits, draws),
               {{1, 0.5 / 0.7}, {2, 0.2 / 0.7}});
  expect_freqs(histogram(sampling(1.0f, 0, 0.71f, 5), logits, draws),
               {{1, 0.5 / 0.85}, {2, 0.2 / 0.85}, {3, 0.15 / 0.85}});
  // top-k and top-p together: top-p applies to the top k renormalised (as in Hugging Face's
  // warpers): 0.5/0.85 < 0.8 <= 0.7/0.85, so ids 1 and 2 (over the whole distribution 0.8 would
  // take id 3 too).
  expect_freqs(histogram(sampling(1.0f, 3, 0.8f, 6), logits, draws),
               {{1, 0.5 / 0.7}, {2, 0.2 / 0.7}});
  // Temperature 2 flattens: p_i^(1/2), normalised.
  double z = 0.0;
  for (double x : p) z += std::sqrt(x);
  std::map<int32_t, double> flat;
  for (int i = 0; i < 5; ++i) flat[i] = std::sqrt(p[static_cast<size_t>(i)]) / z;
  expect_freqs(histogram(sampling(2.0f, 0, 1.0f, 7), logits, draws), flat);
}

TEST(Sampler, NoOpLimitsChangeNothing) {
  // top-k >= vocabulary and top-p = 1 draw exactly what the plain sampler draws.
  const std::vector<float> logits = {0.3f, -1.0f, 2.0f, 0.0f, 1.0f, 1.0f};
  Sampler plain(sampling(0.8f, 0, 1.0f, 42)), wide_k(sampling(0.8f, 6, 1.0f, 42)),
      huge_k(sampling(0.8f, 1000, 1.0f, 42));
  for (int i = 0; i < 500; ++i) {
    const int32_t want = plain.sample(logits.data(), 6);
    EXPECT_EQ(wide_k.sample(logits.data(), 6), want);
    EXPECT_EQ(huge_k.sample(logits.data(), 6), want);
  }
}

TEST(Sampler, RefusesNonFiniteLogits) {
  Sampler sampler(sampling(1.0f, 0, 1.0f, 0));
  std::vector<float> logits = {0.0f, 1.0f, NAN, 2.0f};
  expect_error([&] { sampler.sample(logits.data(), 4); }, {"token id 2", "non-finite"});
  logits[2] = INFINITY;
  expect_error([&] { sampler.sample(logits.data(), 4); }, {"token id 2"});
}

TEST(Sampler, InvalidOptions) {
  expect_error([] { Sampler s(sampling(-0.5f, 0, 1.0f, 0)); }, {"temperature"});
  expect_error([] { Sampler s(sampling(NAN, 0, 1.0f, 0)); }, {"temperature"});
  expect_error([] { Sampler s(sampling(1.0f, -1, 1.0f, 0)); }, {"top-k"});
  expect_error([] { Sampler s(sampling(1.0f, 0, 0.0f, 0)); }, {"top-p"});
  expect_error([] { Sampler s(sampling(1.0f, 0, 1.5f, 0)); }, {"top-p"});
}

// ---- the [model] INI section ---------------------------------------------------------------

TEST(ModelConfigIni, RoundTrip) {
  for (const auto& name : model_preset_names()) {
    const ModelConfig cfg = model_preset(name);
    EXPECT_EQ(model_config_from_ini(model_config_to_ini(cfg)), cfg) << name;
  }
  ModelConfig odd = small_config(3, 5, 40, 1234, 77);
  odd.vocab_pad_multiple = 64;
  EXPECT_EQ(model_config_to_ini(odd),
            "[model]\nfamily=gpt2\nn_layer=3\nn_head=5\nn_embd=40\nvocab_size=1234\nmax_seq_len="
            "77\nvocab_pad_multiple=64\n");
  // Other sections, comments and spacing around '=' are fine.
  const std::string run_config = "[data]\nn_layer=99\npath=x\n\n# the model\n" +
                                 model_config_to_ini(odd) +
                                 "; trailing comment\n[optimizer]\nlr = 3e-4\n";
  EXPECT_EQ(model_config_from_ini(run_config), odd);
  // Written before `family` existed: reads as gpt2.
  EXPECT_EQ(model_config_from_ini("[model]\nn_layer = 3\nn_head=5\nn_embd=40\nvocab_size=1234\n"
                                  "max_seq_len=77\nvocab_pad_multiple=64\n"),
            odd);
  // An unknown family is refused by name, listing the known ones.
  const std::string msg = shardlm::testing::error_of([&] {
    model_config_from_ini("[model]\nfamily=gpt5\n" + model_config_to_ini(odd).substr(20));
  });
  EXPECT_NE(msg.find("unknown model family 'gpt5'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;
  ModelConfig other = odd;
  other.family = "llama";
  EXPECT_EQ(model_config_diff(odd, other), "family: gpt2 -> llama");
}

TEST(ModelConfigIni, Errors) {
  const std::string good = model_config_to_ini(model_preset("tiny"));
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  expect_error([&] { model_config_from_ini(good + "n_expert=2\n"); }, {"unknown key", "n_expert"});
  // A key of another family is known, but GPT-2 refuses it by name.
  expect_error([&] { model_config_from_ini(good + "n_kv_head=2\n"); },
               {"gpt2 family has no n_kv_head"});
  expect_error([&] { model_config_from_ini(replace("max_seq_len=256\n", "")); },
               {"missing key", "max_seq_len"});
  expect_error([&] { model_config_from_ini("[data]\npath=x\n"); }, {"missing key", "n_layer"});
  expect_error([&] { model_config_from_ini(replace("n_embd=128", "n_embd=12x")); },
               {"n_embd", "12x"});
  expect_error([&] { model_config_from_ini(replace("n_head=4", "n_head=")); }, {"n_head"});
  expect_error([&] { model_config_from_ini(replace("n_embd=128", "n_embd=130")); },
               {"n_embd", "n_head"});
  expect_error([&] { model_config_from_ini(replace("n_layer=2", "n_layer=0")); }, {"n_layer"});
  expect_error([&] { model_config_from_ini(replace("n_layer=2", "n_layer 2")); }, {"key=value"});
}

// ---- a real checkpoint ------------------------------------------------------------------------

TEST(GenerateFromCheckpoint, RunDirectoryWithTokenizer) {
  namespace fs = std::filesystem;
  const fs::path scratch = shardlm::testing::make_scratch_dir("generate");
  const Tokenizer tokenizer = Tokenizer::from_file(shardlm::testing::tiny_tokenizer_model(scratch));

  TrainSettings settings;
  settings.model = small_config(2, 4, 64, tokenizer.vocab_size(), 32);
  settings.seq_len = 32;
  settings.seed = 21;
  auto mesh = Mesh::single_process();
  Trainer trainer(settings, *mesh, cpu_backend());
  TrainingCheckpointInfo info;
  info.step = 3;
  info.config_text =
      "[run]\nsteps=3\n" + model_config_to_ini(settings.model) + "[data]\npath=synthetic\n";
  const std::string& bytes = tokenizer.serialized();
  info.tokenizer_model.assign(bytes.begin(), bytes.end());
  const fs::path run = scratch / "run";
  const fs::path saved = save_training_checkpoint(trainer, run / "checkpoints", info);

  // The run directory resolves to its newest checkpoint; so do the root and the step itself.
  EXPECT_EQ(resolve_checkpoint(run), saved);
  EXPECT_EQ(resolve_checkpoint(run / "checkpoints"), saved);
  EXPECT_EQ(resolve_checkpoint(saved), saved);
  expect_error([&] { resolve_checkpoint(scratch); }, {"committed checkpoint", scratch.string()});
  expect_error([&] { resolve_checkpoint(scratch / "nope"); }, {"does not exist"});

  GenerationModel loaded = load_generation_model(run, cpu_backend());
  EXPECT_EQ(loaded.checkpoint, saved);
  EXPECT_EQ(loaded.generator->config(), settings.model);
  ASSERT_TRUE(loaded.tokenizer.has_value());
  EXPECT_EQ(loaded.tokenizer->fingerprint(), tokenizer.fingerprint());
  // The loaded weights are the trainer's, element for element.
  const size_t total = trainer.model().layout().total();
  ASSERT_EQ(loaded.generator->weights().layout().total(), total);
  EXPECT_EQ(0, std::memcmp(loaded.generator->weights().params(), trainer.model().params(),
                           total * sizeof(float)));

  GenerateOptions options;
  options.max_tokens = 12;
  options.sampling = sampling(0.9f, 40, 0.95f, 77);
  const std::vector<int32_t> prompt = loaded.tokenizer->encode("ROMEO:\n");
  const GenerateResult result = loaded.generator->generate(prompt, options);
  EXPECT_EQ(result.tokens.size(), 12u);
  EXPECT_FALSE(loaded.tokenizer->decode(result.tokens).empty());
  options.use_kv_cache = false;
  EXPECT_EQ(loaded.generator->generate(prompt, options).tokens, result.tokens);

  // A config without a valid [model] section is refused, naming the checkpoint.
  info.step = 4;
  info.config_text = "[model]\nn_layer=2\n";
  const fs::path broken = save_training_checkpoint(trainer, run / "checkpoints", info);
  expect_error([&] { load_generation_model(run, cpu_backend()); },
               {broken.string(), "missing key"});
  fs::remove_all(scratch);
}
