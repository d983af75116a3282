// Which ISA level this CPU runs (kernels/cpu/isa.h): cpuid through GCC's
// __builtin_cpu_supports, which also checks that the OS saves the wider vector registers.
#include "kernels/cpu/isa.h"

#include <cstdlib>

#include "core/error.h"

namespace shardlm::cpu {

namespace {
constexpr CpuIsa kAllLevels[] = {CpuIsa::sse, CpuIsa::avx2, CpuIsa::avx512};
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::sse:
      return "sse";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
  }
  return "?";
}

std::optional<CpuIsa> parse_cpu_isa(std::string_view name) {
  for (CpuIsa isa : kAllLevels)
    if (name == cpu_isa_name(isa)) return isa;
  return std::nullopt;
}

std::string cpu_isa_names() {
  std::string out;
  for (CpuIsa isa : kAllLevels) out += (out.empty() ? "" : ", ") + std::string(cpu_isa_name(isa));
  return out;
}

namespace {

#if defined(__clang__) && __clang_major__ < 19
// clang before 19 (the sanitizer build's) takes no level names: each level's features that it
// can test. The levels' others (CX16, LAHF; F16C, LZCNT, MOVBE) came before or with these in
// every CPU made; gcc's build, the one that ships, tests the levels exactly.
bool cpu_supports_level(CpuIsa isa) {
  const bool v2 = __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("sse3") &&
                  __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1") &&
                  __builtin_cpu_supports("sse4.2");
  const bool v3 = v2 && __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("fma");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  return isa == CpuIsa::sse ? v2 : isa == CpuIsa::avx2 ? v3 : v4;
}
#else
bool cpu_supports_level(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::sse:
      return __builtin_cpu_supports("x86-64-v2");
    case CpuIsa::avx2:
      return __builtin_cpu_supports("x86-64-v3");
    case CpuIsa::avx512:
      return __builtin_cpu_supports("x86-64-v4");
  }
  return false;
}
#endif

}  // namespace

bool cpu_supports(CpuIsa isa) {
  __builtin_cpu_init();
  // The same micro-architecture levels the kernels are compiled for (-march=x86-64-vN).
  return cpu_supports_level(isa);
}

std::vector<CpuIsa> supported_cpu_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : kAllLevels)
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

CpuIsa choose_cpu_isa(std::string_view forced) {
  const std::vector<CpuIsa> supported = supported_cpu_isas();
  std::string have;
  for (CpuIsa isa : supported) have += (have.empty() ? "" : ", ") + std::string(cpu_isa_name(isa));
  if (supported.empty())
    fail(
        "this CPU is older than x86-64-v2 (SSE4.2, POPCNT), the oldest level shardlm is built "
        "for");
  if (forced.empty()) return supported.back();
  const std::optional<CpuIsa> isa = parse_cpu_isa(forced);
  if (!isa)
    fail("SHARDLM_ISA=" + std::string(forced) + ": not an ISA level (one of " + cpu_isa_names() +
         "; this CPU runs " + have + ")");
  if (!cpu_supports(*isa))
    fail("SHARDLM_ISA=" + std::string(forced) + ": this CPU lacks it (it runs " + have + ")");
  return *isa;
}

CpuIsa running_cpu_isa() {
  static const CpuIsa isa = [] {
    const char* forced = std::getenv("SHARDLM_ISA");
    return choose_cpu_isa(forced != nullptr ? forced : "");
  }();
  return isa;
}

}  // namespace shardlm::cpu
