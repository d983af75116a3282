// resolve_run_config: every default, every refusal (each message names the flag and the value),
// and the one config dialect: the effective config a run writes reads back as the same run.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include "support_source_location.h"

#include "core/error.h"
#include "kernels/registry.h"
#include "model/config.h"
#include "support_errors.h"
#include "train/resolve_run_config.h"
#include "train/run_flags.h"

using namespace shardlm;
using shardlm::testing::expect_error;

namespace {

using Given = std::initializer_list<std::pair<const char*, const char*>>;

// The flags `given`, plus --out (which every run needs).
RunFlags flags_of(Given given, bool with_out = true) {
  RunFlags f;
  if (with_out) f.values["out"] = "runs/x";
  for (const auto& [name, value] : given) f.values[name] = value;
  return f;
}

ResolvedRun resolve(Given given, const RunFacts& facts = {}) {
  return resolve_run_config(flags_of(given), facts);
}

RunFacts world(int ranks) {
  RunFacts facts;
  facts.world_size = ranks;
  return facts;
}

RunFacts tokenizer_of(int vocab) {
  RunFacts facts;
  facts.tokenizer_vocab = vocab;
  facts.tokenizer_path = "data/ts/tokenizer.model";
  return facts;
}

// resolve_run_config(flags, facts) refuses with a UsageError (exit code 2) naming every word.
void expect_refused(
    const RunFlags& flags, const RunFacts& facts, std::initializer_list<std::string_view> words,
    shardlm::testing::SourceLocation where = shardlm::testing::SourceLocation::current()) {
  expect_error([&] { resolve_run_config(flags, facts); }, words, where);
  try {
    resolve_run_config(flags, facts);
  } catch (const UsageError&) {
    return;
  } catch (...) {
  }
  ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line())) << "not a UsageError";
}
void expect_refused(
    const RunFlags& flags, std::initializer_list<std::string_view> words,
    shardlm::testing::SourceLocation where = shardlm::testing::SourceLocation::current()) {
  expect_refused(flags, RunFacts{}, words, where);
}

// A small model on synthetic data, as the CLI tests train it.
constexpr std::pair<const char*, const char*> kTiny[] = {
    {"n-layer", "2"},      {"n-head", "4"},   {"n-embd", "64"},     {"vocab-size", "512"},
    {"max-seq-len", "32"}, {"seq-len", "32"}, {"micro-batch", "2"}, {"global-batch", "4"}};

RunFlags tiny(Given more = {}) {
  RunFlags f = flags_of(more);
  for (const auto& [name, value] : kTiny)
    if (!f.values.count(name)) f.values[name] = value;
  return f;
}

}  // namespace

// ---- defaults ------------------------------------------------------------------------------

TEST(ResolveRunConfig, DefaultsOfEverySetting) {
  const ResolvedRun r = resolve({});
  const RunConfig& c = r.config;
  EXPECT_EQ(c.model_preset, "tiny");
  EXPECT_EQ(c.model, model_preset("tiny"));
  EXPECT_EQ(c.data, "synthetic");
  EXPECT_EQ(c.seq_len, model_preset("tiny").max_seq_len);  // 0: the model's max_seq_len
  EXPECT_EQ(c.micro_batch, 4);
  EXPECT_EQ(c.global_batch, 4);  // micro-batch x dp
  EXPECT_EQ(c.steps, 100);
  EXPECT_EQ(c.seed, 1337u);
  EXPECT_EQ(c.optim.lr, 6e-4f);
  EXPECT_EQ(c.optim.min_lr, 6e-5f);
  EXPECT_EQ(c.optim.warmup_steps, 0);
  EXPECT_EQ(c.optim.total_steps, 100);  // the schedule ends at --steps
  EXPECT_EQ(c.optim.weight_decay, 0.1f);
  EXPECT_EQ(c.optim.grad_clip, 1.0f);
  EXPECT_EQ(c.optim.beta1, 0.9f);
  EXPECT_EQ(c.optim.beta2, 0.95f);
  EXPECT_EQ(c.optim.eps, 1e-8f);
  EXPECT_FALSE(c.skip_non_finite);
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.pp, 1);
  EXPECT_TRUE(c.pp_layers.empty());
  EXPECT_EQ(c.zero, 0);
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.out, "runs/x");
  EXPECT_EQ(c.metrics, "runs/x/metrics.jsonl");
  EXPECT_EQ(c.resume, "auto");
  EXPECT_EQ(c.exit_after_minutes, 0.0);
  EXPECT_EQ(c.save_every, 0);
  EXPECT_EQ(c.keep_last, 3);
  EXPECT_EQ(c.keep_every, 0);
  EXPECT_EQ(c.eval_every, 0);
  EXPECT_EQ(c.eval_steps, 4);
  EXPECT_EQ(c.log_every, 1);
  EXPECT_EQ(c.peak_tflops, 0.0);
  EXPECT_EQ(r.mesh.dp, 1);
  EXPECT_EQ(r.train.micro_batches, 1);
  EXPECT_EQ(r.train.micro_batch, 4);
  EXPECT_EQ(r.train.seq_len, c.seq_len);
  EXPECT_EQ(r.train.zero_stage, 0);
  EXPECT_EQ(r.train.seed, 1337u);
  EXPECT_EQ(r.train.model, c.model);
}

TEST(ResolveRunConfig, GivingEveryDefaultExplicitlyChangesNothing) {
  const std::string implicit = resolve({}).config.to_ini();
  for (const RunFlagSpec& spec : run_flag_specs()) {
    if (*spec.default_value == '\0') continue;
    RunFlags f = flags_of({});
    f.values[spec.name] = spec.default_value;
    EXPECT_EQ(resolve_run_config(f, {}).config.to_ini(), implicit) << spec.name;
  }
}

TEST(ResolveRunConfig, PresetOverridesAndDerivedSizes) {
  const ResolvedRun r = resolve({{"model", "mini"}, {"n-layer", "3"}, {"max-seq-len", "64"}});
  ModelConfig want = model_preset("mini");
  want.n_layer = 3;
  want.max_seq_len = 64;
  EXPECT_EQ(r.config.model, want);
  EXPECT_EQ(r.config.seq_len, 64);
  EXPECT_EQ(resolve({{"seq-len", "0"}}).config.seq_len, model_preset("tiny").max_seq_len);
}

TEST(ResolveRunConfig, GlobalBatchDefaultsToOneRoundAndSetsGradientAccumulation) {
  // 4 ranks, tp 2: dp 2, so one round is micro-batch 3 x 2 = 6 sequences.
  const ResolvedRun one = resolve({{"micro-batch", "3"}, {"tp", "2"}}, world(4));
  EXPECT_EQ(one.mesh.dp, 2);
  EXPECT_EQ(one.config.global_batch, 6);
  EXPECT_EQ(one.train.micro_batches, 1);
  const ResolvedRun acc =
      resolve({{"micro-batch", "3"}, {"tp", "2"}, {"global-batch", "24"}}, world(4));
  EXPECT_EQ(acc.train.micro_batches, 4);
  const ResolvedRun tokens =
      resolve({{"seq-len", "32"}, {"micro-batch", "2"}, {"global-batch-tokens", "256"}});
  EXPECT_EQ(tokens.config.global_batch, 8);
  EXPECT_EQ(tokens.train.micro_batches, 4);
}

TEST(ResolveRunConfig, VocabularyComesFromTheTokenizerUnlessGiven) {
  EXPECT_EQ(resolve({{"data", "data/ts"}}, tokenizer_of(1024)).config.model.vocab_size, 1024);
  EXPECT_EQ(resolve({{"data", "data/ts"}, {"vocab-size", "2048"}}, tokenizer_of(1024))
                .config.model.vocab_size,
            2048);
  // Synthetic data: the preset's.
  EXPECT_EQ(resolve({}).config.model.vocab_size, model_preset("tiny").vocab_size);
}

TEST(ResolveRunConfig, SwitchesAndLists) {
  const ResolvedRun r = resolve({{"n-layer", "5"},
                                 {"pp", "2"},
                                 {"pp-layers", "3,2"},
                                 {"on-nan", "skip"},
                                 {"zero", "1"},
                                 {"metrics", "m.jsonl"},
                                 {"resume", "none"}},
                                world(2));
  EXPECT_EQ(r.config.pp_layers, (std::vector<int>{3, 2}));
  EXPECT_EQ(r.train.pipeline_layers, (std::vector<int>{3, 2}));
  EXPECT_TRUE(r.config.skip_non_finite);
  EXPECT_EQ(r.train.zero_stage, 1);
  EXPECT_EQ(r.config.metrics, "m.jsonl");
  EXPECT_EQ(r.config.resume, "none");
}

TEST(ResolveRunConfig, DataSettingHasItsDefault) {
  EXPECT_EQ(data_setting(flags_of({})), kSyntheticData);
  EXPECT_EQ(data_setting(flags_of({{"data", "d"}})), "d");
}

// ---- refusals ------------------------------------------------------------------------------

TEST(ResolveRunConfig, RefusesValuesThatDoNotParse) {
  expect_refused(flags_of({{"steps", "abc"}}), {"--steps", "integer", "'abc'"});
  expect_refused(flags_of({{"steps", "3.5"}}), {"--steps", "'3.5'"});
  expect_refused(flags_of({{"steps", ""}}), {"--steps", "''"});
  expect_refused(flags_of({{"seed", "-1"}}), {"--seed", "'-1'"});
  expect_refused(flags_of({{"global-batch", "99999999999999999999"}}),
                 {"--global-batch", "integer in [", "'99999999999999999999'"});
  expect_refused(flags_of({{"lr", "fast"}}), {"--lr", "number", "'fast'"});
  expect_refused(flags_of({{"lr", "inf"}}), {"--lr", "'inf'"});
  expect_refused(flags_of({{"lr", "nan"}}), {"--lr", "'nan'"});
  expect_refused(flags_of({{"n-layer", "two"}}), {"--n-layer", "'two'"});
  expect_refused(flags_of({{"pp-layers", "1,x"}}), {"--pp-layers", "'1,x'"});
  expect_refused(flags_of({{"pp-layers", "1,,2"}}), {"--pp-layers", "'1,,2'"});
}

TEST(ResolveRunConfig, RefusesOutOfRangeValuesNamingFlagAndValue) {
  const struct {
    const char* flag;
    const char* value;
    const char* why;
  } cases[] = {
      {"steps", "0", ">= 1"},
      {"eval-steps", "0", ">= 1"},
      {"log-every", "0", ">= 1"},
      {"micro-batch", "0", ">= 1"},
      {"warmup", "-1", ">= 0"},
      {"save-every", "-1", ">= 0"},
      {"keep-last", "-1", ">= 0"},
      {"keep-every", "-2", ">= 0"},
      {"eval-every", "-1", ">= 0"},
      {"peak-tflops", "-1", ">= 0"},
      {"exit-after-minutes", "-5", ">= 0"},
      {"weight-decay", "-0.1", ">= 0"},
      {"grad-clip", "-1", ">= 0"},
      {"beta1", "1", "[0, 1)"},
      {"beta2", "-0.5", ">= 0"},
      {"eps", "0", "> 0"},
      {"seq-len", "-1", ">= 0"},
      {"global-batch", "-4", ">= 0"},
      {"global-batch-tokens", "-1", ">= 0"},
      {"zero", "4", "0, 1, 2 or 3"},
      {"recompute", "some", "none, selective or full"},
  };
  for (const auto& c : cases) {
    const std::string flag = std::string("--") + c.flag;
    expect_refused(flags_of({{c.flag, c.value}}), {flag, c.value, c.why});
  }
}

TEST(ResolveRunConfig, RefusesBadLearningRates) {
  expect_refused(flags_of({{"lr", "0"}}), {"--lr 0", "--min-lr 6e-5", "lr > 0"});
  expect_refused(flags_of({{"lr", "1e-3"}, {"min-lr", "2e-3"}}),
                 {"--lr 1e-3", "--min-lr 2e-3", "min-lr <= lr"});
  expect_refused(flags_of({{"min-lr", "-1e-5"}}), {"--min-lr -1e-5", "0 <= min-lr"});
}

TEST(ResolveRunConfig, RefusesUnknownNames) {
  expect_refused(flags_of({{"model", "gpt5"}}),
                 {"--model", "unknown model preset 'gpt5'", "gpt2-xl"});
  expect_refused(flags_of({{"on-nan", "maybe"}}), {"--on-nan", "'error' or 'skip'", "'maybe'"});
  expect_refused(flags_of({{"device", "tpu"}}), {"--device", "'cpu'", "'cuda'", "'tpu'"});
  expect_refused(flags_of({{"resume", ""}}), {"--resume", "auto", "none"});
}

TEST(ResolveRunConfig, RefusesAMissingOutDirectory) {
  expect_refused(flags_of({}, /*with_out=*/false), {"--out", "required"});
}

TEST(ResolveRunConfig, RefusesBatchesThatDoNotDivide) {
  expect_refused(tiny({{"global-batch", "3"}}),
                 {"--global-batch 3", "not a multiple", "micro-batch x dp = 2 x 1 = 2"});
  expect_refused(tiny({{"global-batch", "6"}}), world(2), {"--global-batch 6", "2 x 2 = 4"});
  RunFlags both = tiny({{"global-batch-tokens", "128"}});
  expect_refused(both, {"--global-batch", "--global-batch-tokens", "contradict"});
  RunFlags tokens = tiny();
  tokens.values.erase("global-batch");
  tokens.values["global-batch-tokens"] = "100";
  expect_refused(tokens, {"--global-batch-tokens", "100", "multiple of the sequence length 32"});
  tokens.values["global-batch-tokens"] = "96";  // 3 sequences, rounds of 2
  expect_refused(tokens, {"--global-batch-tokens 96", "3 sequences", "not a multiple"});
}

TEST(ResolveRunConfig, RefusesASequenceLongerThanThePositionTable) {
  expect_refused(tiny({{"seq-len", "64"}}), {"--seq-len", "sequence length 64", "max_seq_len 32"});
}

TEST(ResolveRunConfig, RefusesAVocabularySmallerThanTheTokenizers) {
  expect_refused(flags_of({{"data", "data/ts"}, {"vocab-size", "1000"}}), tokenizer_of(1024),
                 {"--vocab-size", "1000", "tokenizer's 1024", "data/ts/tokenizer.model"});
  expect_refused(flags_of({{"vocab-size", "0"}}), {"--vocab-size", "synthetic", "0"});
}

TEST(ResolveRunConfig, RefusesAnInvalidModel) {
  expect_refused(tiny({{"n-embd", "66"}}), {"n_embd (66)", "divisible by n_head (4)"});
  expect_refused(flags_of({{"n-layer", "0"}}), {"n_layer", "0"});
}

TEST(ResolveRunConfig, RefusesLayoutsThatDoNotDivide) {
  expect_refused(tiny({{"tp", "3"}}), world(2), {"tp=3", "world size 2"});
  expect_refused(tiny({{"tp", "0"}}), {"tp=0", "at least 1"});
  expect_refused(tiny({{"n-head", "2"}, {"tp", "4"}}), world(4),
                 {"n_head 2 is not divisible by tp", "tp 4"});
  expect_refused(tiny({{"pp", "2"}, {"pp-layers", "1,2"}}), world(2),
                 {"--pp-layers sums to 3", "n_layer 2"});
  expect_refused(tiny({{"pp", "2"}, {"pp-layers", "2"}}), world(2),
                 {"--pp-layers lists 1 stages", "pp is 2"});
  expect_refused(tiny({{"pp", "4"}}), world(4), {"pp 4 is larger than n_layer 2"});
}

TEST(ResolveRunConfig, RefusesSettingsThatGiveAnotherModelThanTheRecordedOne) {
  const RunFlags first = tiny();
  RunFlags again =
      parse_run_config_text(resolve_run_config(first, {}).config.to_ini(), "run_config.ini");
  again.values["out"] = "runs/y";
  EXPECT_NO_THROW(resolve_run_config(again, {}));
  again.values["n-layer"] = "3";
  expect_refused(again, {"run_config.ini", "[model]", "n_layer: 2 -> 3"});
}

// ---- the config text -----------------------------------------------------------------------

// The effective config of `flags`, read back as --config input, resolves to the same run.
void expect_round_trip(const RunFlags& flags, const RunFacts& facts = {}) {
  const ResolvedRun first = resolve_run_config(flags, facts);
  const std::string text = first.config.to_ini();
  RunFlags again = parse_run_config_text(text, "run_config.ini");
  ASSERT_TRUE(again.recorded_model.has_value());
  EXPECT_EQ(*again.recorded_model, first.config.model);
  again.values["out"] = "elsewhere";
  const ResolvedRun second = resolve_run_config(again, facts);
  EXPECT_EQ(second.config.to_ini(), text);
  EXPECT_EQ(second.train.micro_batches, first.train.micro_batches);
  EXPECT_EQ(second.train.optim.lr, first.train.optim.lr);
  EXPECT_EQ(model_config_from_ini(text), first.config.model);
}

TEST(RunConfigText, ReadsBackAsTheSameRun) {
  expect_round_trip(flags_of({}));
  expect_round_trip(tiny({{"lr", "3e-3"},
                          {"min-lr", "3e-4"},
                          {"eps", "1.2345678e-7"},
                          {"weight-decay", "0.123456789"},
                          {"peak-tflops", "0.1"}}));
  expect_round_trip(tiny({{"n-layer", "3"},
                          {"pp", "2"},
                          {"pp-layers", "2,1"},
                          {"zero", "1"},
                          {"on-nan", "skip"},
                          {"save-every", "5"}}),
                    world(4));
  expect_round_trip(flags_of({{"data", "data/ts"}, {"global-batch-tokens", "2048"}}),
                    tokenizer_of(1024));
}

TEST(RunConfigText, HasEveryRecordedSettingAndNothingOfThisStart) {
  RunFlags f = tiny({{"resume", "none"}, {"exit-after-minutes", "5"}, {"metrics", "m.jsonl"}});
  const RunFlags back = parse_run_config_text(resolve_run_config(f, {}).config.to_ini(), "x");
  for (const RunFlagSpec& spec : run_flag_specs())
    EXPECT_EQ(back.values.count(spec.name), spec.recorded ? 1u : 0u) << spec.name;
}

TEST(RunConfigText, FloatsAreWrittenInTheirShortestExactForm) {
  const std::string text = resolve({{"lr", "3e-3"}}).config.to_ini();
  EXPECT_NE(text.find("\nlr = 0.003\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\neps = 1e-08\n"), std::string::npos) << text;
}

TEST(RunConfigText, ParsingRefusesWhatIsNotASetting) {
  expect_error([] { parse_run_config_text("lr = 1e-3\nlearning-rate = 5\n", "bad.ini"); },
               {"bad.ini:2", "unknown setting 'learning-rate'"});
  expect_error([] { parse_run_config_text("lr = 1\n\nlr = 2\n", "twice.ini"); },
               {"twice.ini:3", "'lr' is set twice", "line 1"});
  expect_error([] { parse_run_config_text("steps 3\n", "f.ini"); },
               {"f.ini:1", "`flag-name = value`", "'steps 3'"});
  // The sectioned snake_case run_config.ini of shardlm before the one dialect.
  expect_error(
      [] {
        parse_run_config_text(
            model_config_to_ini(model_preset("tiny")) + "\n[device]\ndevice=cpu\n", "old.ini");
      },
      {"old.ini:", "section [device]", "[model]"});
  expect_error([] { parse_run_config_text("[model]\nn_layer=2\n", "m.ini"); },
               {"m.ini", "[model]", "missing key 'n_head'"});
  EXPECT_THROW(parse_run_config_text("x = 1\n", "f"), UsageError);
}

TEST(RunConfigText, CommentsAndBlankLinesAreIgnored) {
  const RunFlags f =
      parse_run_config_text("# a comment\n\n  steps = 7   # trailing\npp-layers =\n", "f");
  EXPECT_EQ(f.values.at("steps"), "7");
  EXPECT_EQ(f.values.at("pp-layers"), "");
  EXPECT_FALSE(f.recorded_model.has_value());
}

TEST(RunConfigText, TheShippedConfigsParse) {
  for (const char* name : {"demo.ini", "demo-llama.ini", "e2e-tiny.ini"}) {
    const RunFlags f = read_run_config_file(std::string(SHARDLM_REPO_DIR) + "/configs/" + name);
    EXPECT_FALSE(f.values.empty()) << name;
  }
  expect_error([] { read_run_config_file("/no/such/config.ini"); },
               {"--config", "/no/such/config.ini"});
}

TEST(Registry, BackendNamesAreTheListedBackends) {
  std::vector<std::string> listed;
  for (const BackendInfo& b : list_backends()) listed.push_back(b.name);
  EXPECT_EQ(backend_names(), listed);
}
