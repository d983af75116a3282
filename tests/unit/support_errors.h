// Test helper: the message of the shardlm::Error a callable throws.
#pragma once

#include <string>

#include "core/error.h"

namespace shardlm::testing {

// The message of the Error that `fn` throws ("" if it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace shardlm::testing
