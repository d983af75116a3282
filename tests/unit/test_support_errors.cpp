// The error helpers of support_errors.h: a failing expect_error names what was missing.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "support_errors.h"

namespace shardlm::testing {
namespace {

void throws_bad_flag() {
  fail("--steps: \"x\" is not a number");
}

TEST(SupportErrors, ErrorOfReturnsTheMessageOrNothing) {
  EXPECT_NE(error_of(throws_bad_flag).find("--steps"), std::string::npos);
  EXPECT_EQ(error_of([] {}), "");
}

TEST(SupportErrors, ExpectErrorPassesWhenEveryWordIsThere) {
  EXPECT_TRUE(expect_error(throws_bad_flag, {"--steps", "\"x\"", "number"}));
  EXPECT_TRUE(expect_error(throws_bad_flag, {}));
}

TEST(SupportErrors, ExpectErrorShowsTheMissingWordsAndTheMessage) {
  EXPECT_NONFATAL_FAILURE(expect_error(throws_bad_flag, {"--steps", "--seed", "integer"}),
                          "lacks \"--seed\", \"integer\"\n  message: ");
  EXPECT_NONFATAL_FAILURE(expect_error(throws_bad_flag, {"--seed"}), "is not a number");
}

TEST(SupportErrors, ExpectErrorFailsWithoutAShardlmError) {
  EXPECT_NONFATAL_FAILURE(expect_error([] {}, {"x"}), "nothing was thrown");
  EXPECT_NONFATAL_FAILURE(expect_error([] { throw std::runtime_error("plain"); }, {"plain"}),
                          "another exception was thrown: plain");
  EXPECT_NONFATAL_FAILURE(expect_error([] { throw 7; }, {}), "non-exception");
}

}  // namespace
}  // namespace shardlm::testing
