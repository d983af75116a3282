// Test helpers for errors: the message of the shardlm::Error a callable throws, and a gtest
// assertion that a callable throws one naming given words.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include "support_source_location.h"

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

namespace detail {
// "" if `fn` throws a shardlm::Error whose message contains every word, else why not.
template <typename Fn>
std::string error_mismatch(Fn&& fn, std::initializer_list<std::string_view> words) {
  std::string message;
  try {
    fn();
    return "expected a shardlm::Error, but nothing was thrown";
  } catch (const Error& e) {
    message = e.what();
  } catch (const std::exception& e) {
    return std::string("expected a shardlm::Error, but another exception was thrown: ") + e.what();
  } catch (...) {
    return "expected a shardlm::Error, but a non-exception was thrown";
  }
  std::string missing;
  for (std::string_view word : words) {
    if (message.find(word) != std::string::npos) continue;
    missing += (missing.empty() ? "\"" : ", \"") + std::string(word) + "\"";
  }
  if (missing.empty()) return "";
  return "the error message lacks " + missing + "\n  message: " + message;
}
}  // namespace detail

// Non-fatal gtest assertion: `fn` throws a shardlm::Error whose message contains every one of
// `words` (case-sensitive substrings). A failure is reported at the caller's line and shows
// the whole message and the missing words, so a reworded error is fixed from the log alone.
// Returns whether it passed (for a caller that cannot go on otherwise: `if (!...) return;`).
//   expect_error([&] { parse_steps("x"); }, {"--steps", "\"x\""});
template <typename Fn>
bool expect_error(
    Fn&& fn, std::initializer_list<std::string_view> words,
    shardlm::testing::SourceLocation where = shardlm::testing::SourceLocation::current()) {
  std::string why = detail::error_mismatch(fn, words);
  if (why.empty()) return true;
  ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line())) << why;
  return false;
}

}  // namespace shardlm::testing
