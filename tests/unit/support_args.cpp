#include "support_args.h"

#include <vector>

#include "core/fs.h"
#include "core/parse.h"

namespace shardlm::testing {

namespace {
std::vector<std::string> command_line() {
  const std::string raw = read_file("/proc/self/cmdline");
  std::vector<std::string> args;
  std::string cur;
  for (char c : raw) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return args;
}
}  // namespace

std::string test_option(const std::string& name, const std::string& fallback) {
  const auto args = command_line();
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--" + name) return args[i + 1];
  return fallback;
}

int test_option_int(const std::string& name, int fallback) {
  const std::string v = test_option(name, "");
  return v.empty() ? fallback : parse_int("--" + name, v);
}

}  // namespace shardlm::testing
