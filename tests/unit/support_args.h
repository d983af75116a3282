// Command-line options of a test binary (after GoogleTest has consumed its own flags), read
// from /proc/self/cmdline so any test can see them: `--tp 2 --pp 2` -> option("tp") == "2".
#pragma once

#include <string>

namespace shardlm::testing {

std::string test_option(const std::string& name, const std::string& fallback);
int test_option_int(const std::string& name, int fallback);

}  // namespace shardlm::testing
