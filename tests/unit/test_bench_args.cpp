// bench/bench_args.h: the flag parsing every benchmark program shares.
#include "bench_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support_errors.h"

namespace shardlm {
namespace {

using testing::expect_error;

// argv for Flags::parse: a program name, then `args`.
struct Argv {
  explicit Argv(std::vector<std::string> args) : storage(std::move(args)) {
    storage.insert(storage.begin(), "bench");
    for (auto& s : storage) pointers.push_back(s.data());
  }
  int argc() const { return static_cast<int>(pointers.size()); }
  char** argv() { return pointers.data(); }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

struct Targets {
  int steps = 5;
  int64_t mb = 500;
  double peak = 0.0;
  float temperature = 1.0f;
  std::string model = "mini";
  std::vector<int> layers;
  bool keep = false;
};

bench::Flags flags_for(Targets& t) {
  bench::Flags flags("usage: bench [--steps N] ...");
  flags.add("steps", &t.steps)
      .add("mb", &t.mb)
      .add("peak-gflops", &t.peak)
      .add("temperature", &t.temperature)
      .add("model", &t.model)
      .add("pp-layers", &t.layers)
      .add_switch("keep", &t.keep);
  return flags;
}

TEST(BenchArgs, EveryKindOfFlag) {
  Targets t;
  Argv a({"--steps", "7", "--mb", "8000000000", "--peak-gflops", "540.5", "--temperature", "0.5",
          "--model", "gpt2", "--keep", "--pp-layers", "3,1"});
  EXPECT_TRUE(flags_for(t).parse(a.argc(), a.argv()));
  EXPECT_EQ(t.steps, 7);
  EXPECT_EQ(t.mb, 8000000000);
  EXPECT_EQ(t.peak, 540.5);
  EXPECT_EQ(t.temperature, 0.5f);
  EXPECT_EQ(t.model, "gpt2");
  EXPECT_EQ(t.layers, (std::vector<int>{3, 1}));
  EXPECT_TRUE(t.keep);
}

TEST(BenchArgs, DefaultsStayWithoutFlags) {
  Targets t;
  Argv a({});
  EXPECT_TRUE(flags_for(t).parse(a.argc(), a.argv()));
  EXPECT_EQ(t.steps, 5);
  EXPECT_EQ(t.model, "mini");
  EXPECT_FALSE(t.keep);
}

TEST(BenchArgs, HelpStopsParsing) {
  Targets t;
  Argv a({"--help", "--steps", "x"});
  bench::Flags flags = flags_for(t);
  EXPECT_FALSE(flags.parse(a.argc(), a.argv()));
  EXPECT_EQ(flags.usage(), "usage: bench [--steps N] ...");
}

TEST(BenchArgs, RefusalsNameTheFlag) {
  Targets t;
  const auto parse = [&](std::vector<std::string> args) {
    Argv a(std::move(args));
    flags_for(t).parse(a.argc(), a.argv());
  };
  expect_error([&] { parse({"--steps", "x"}); }, {"--steps must be an integer", "'x'"});
  expect_error([&] { parse({"--steps"}); }, {"--steps needs a value"});
  expect_error([&] { parse({"--bogus", "1"}); }, {"unknown flag '--bogus'"});
  expect_error([&] { parse({"steps", "1"}); }, {"unknown flag 'steps'"});
  expect_error([&] { parse({"--peak-gflops", "fast"}); }, {"--peak-gflops must be a number"});
  expect_error([&] { parse({"--pp-layers", "1,,2"}); }, {"--pp-layers", "'1,,2'"});
}

}  // namespace
}  // namespace shardlm
