// Runtime ISA dispatch (kernels/cpu/isa.h) and threads per rank (kernels/cpu/threads.h). The
// dispatched level is checked against /proc/cpuinfo's flags, read independently of the cpuid
// path the dispatcher takes; the per-level op results are test_backend_ops' cpu_<level> rows.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/threads.h"
#include "support_errors.h"

namespace shardlm::cpu {
namespace {

using testing::expect_error;

// The first "flags" line of /proc/cpuinfo.
std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

// The best level by the kernel's view of the CPU: x86-64-v4 / -v3 feature sets.
CpuIsa best_level_from_cpuinfo(const std::set<std::string>& f) {
  const auto has = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (!f.count(n)) return false;
    return true;
  };
  const bool v3 = has({"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"});
  if (v3 && has({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})) return CpuIsa::avx512;
  if (v3) return CpuIsa::avx2;
  return CpuIsa::sse;
}

TEST(CpuIsa, DispatchesToTheBestLevelThisCpuHas) {
  const std::set<std::string> flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line";
  const CpuIsa want = best_level_from_cpuinfo(flags);
  EXPECT_EQ(choose_cpu_isa(""), want) << "cpuinfo says " << cpu_isa_name(want);
  EXPECT_EQ(supported_cpu_isas().back(), want);
  std::cout << "dispatched ISA level: " << cpu_isa_name(choose_cpu_isa("")) << " (running "
            << cpu_isa_name(running_cpu_isa()) << ")\n";
  ::testing::Test::RecordProperty("dispatched_isa", cpu_isa_name(choose_cpu_isa("")));
}

TEST(CpuIsa, TheRunningLevelIsShardlmIsaOrTheBest) {
  const char* forced = std::getenv("SHARDLM_ISA");
  EXPECT_EQ(running_cpu_isa(), choose_cpu_isa(forced ? forced : ""));
  EXPECT_EQ(&cpu_backend(), cpu_isa_kernels(running_cpu_isa()).backend);
}

TEST(CpuIsa, EveryLevelHasItsOwnBackendAndAPositivePeak) {
  std::set<const KernelBackend*> seen;
  for (CpuIsa isa : supported_cpu_isas()) {
    const CpuIsaKernels& k = cpu_isa_kernels(isa);
    EXPECT_TRUE(seen.insert(k.backend).second) << cpu_isa_name(isa) << " shares a backend";
    EXPECT_STREQ(k.backend->name(), "cpu");
    EXPECT_GT(k.measure_fma_peak(0.005, 2).cpu_gflops, 0.0) << cpu_isa_name(isa);
  }
  EXPECT_EQ(supported_cpu_isas().front(), CpuIsa::sse);
}

TEST(CpuIsa, ForcingALevelAcceptsSupportedOnesAndRefusesOthersByName) {
  for (CpuIsa isa : supported_cpu_isas()) EXPECT_EQ(choose_cpu_isa(cpu_isa_name(isa)), isa);
  expect_error([] { choose_cpu_isa("avx3"); }, {"SHARDLM_ISA=avx3", "not an ISA level", "avx512"});
  if (!cpu_supports(CpuIsa::avx512))
    expect_error([] { choose_cpu_isa("avx512"); }, {"SHARDLM_ISA=avx512", "this CPU lacks it"});
  EXPECT_EQ(parse_cpu_isa("AVX2"), std::nullopt);
  EXPECT_EQ(cpu_isa_names(), "sse, avx2, avx512");
}

TEST(CpuThreads, EachRankTakesItsShareUnlessToldOtherwise) {
  EXPECT_EQ(choose_cpu_threads(0, nullptr, 16, 4).threads, 4);
  EXPECT_EQ(choose_cpu_threads(0, nullptr, 2, 4).threads, 1);  // never 0
  EXPECT_EQ(choose_cpu_threads(0, nullptr, 7, 2).threads, 3);  // never more than the share
  EXPECT_EQ(choose_cpu_threads(0, "", 8, 1).threads, 8);
  EXPECT_EQ(choose_cpu_threads(0, nullptr, 8, 2).reason, "8 CPUs / 2 rank(s) on this node");
}

TEST(CpuThreads, OmpNumThreadsAndTheFlagWin) {
  EXPECT_EQ(choose_cpu_threads(0, "3", 16, 4).threads, 3);
  EXPECT_EQ(choose_cpu_threads(0, "3", 16, 4).reason, "OMP_NUM_THREADS");
  EXPECT_EQ(choose_cpu_threads(0, "5,2", 16, 4).threads, 5);  // the outer level of a list
  EXPECT_EQ(choose_cpu_threads(2, "3", 16, 4).threads, 2);
  EXPECT_EQ(choose_cpu_threads(2, "3", 16, 4).reason, "--threads");
  expect_error([] { choose_cpu_threads(0, "x", 16, 4); }, {"OMP_NUM_THREADS", "'x'"});
  expect_error([] { choose_cpu_threads(0, "0", 16, 4); }, {"OMP_NUM_THREADS=0"});
}

TEST(CpuThreads, UsableCpusAreThisProcesssAffinity) {
  EXPECT_GE(usable_cpu_count(), 1);
}

}  // namespace
}  // namespace shardlm::cpu
