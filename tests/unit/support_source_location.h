// std::source_location for the test helpers that report their caller's line. clang 14 (the
// sanitizer build, docs/sanitizers.md) lacks the builtin libstdc++'s <source_location> needs,
// so it gets the experimental one, which has the same members.
#pragma once

#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
namespace shardlm::testing {
using SourceLocation = std::source_location;
}
#else
#include <experimental/source_location>
namespace shardlm::testing {
using SourceLocation = std::experimental::source_location;
}
#endif
