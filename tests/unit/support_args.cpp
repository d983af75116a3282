#include "support_args.h"

#include <fstream>
#include <iterator>
#include <vector>

namespace shardlm::testing {

namespace {
std::vector<std::string> command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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
  return v.empty() ? fallback : std::stoi(v);
}

}  // namespace shardlm::testing
