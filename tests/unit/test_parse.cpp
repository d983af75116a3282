// core/parse.h: the strict number parsers every flag, config key and index field goes through.
#include "core/parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "support_errors.h"

namespace shardlm {
namespace {

using testing::expect_error;

TEST(Parse, IntsTakeTheWholeText) {
  EXPECT_EQ(parse_int("--tp", "4"), 4);
  EXPECT_EQ(parse_int("--tp", "-12"), -12);
  EXPECT_EQ(parse_int("--tp", "2147483647"), std::numeric_limits<int>::max());
  EXPECT_EQ(parse_int64("--mb", "-9223372036854775808"), std::numeric_limits<int64_t>::min());
  for (const char* bad : {"", "x", "4x", " 4", "4 ", "+4", "4.0", "1e3", "0x10"})
    expect_error([&] { parse_int("--tp", bad); },
                 {"--tp must be an integer", std::string("got '") + bad + "'"});
}

TEST(Parse, OutOfRangeNamesTheRange) {
  expect_error(
      [] { parse_int("[model] section: n_layer", "2147483648"); },
      {"[model] section: n_layer must be an integer in [-2147483648, 2147483647]", "'2147483648'"});
  expect_error([] { parse_int64("--mb", "9223372036854775808"); }, {"--mb", "in [", "'9223"});
}

TEST(Parse, Uint64DecimalAndHex) {
  EXPECT_EQ(parse_uint64("tokens", "18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_uint64("fingerprint", "00ff", 16), 0xffu);
  EXPECT_EQ(parse_uint64("fingerprint", "DEADbeef00000001", 16), 0xdeadbeef00000001u);
  expect_error([] { parse_uint64("tokens", "-1"); }, {"tokens must be a non-negative integer"});
  expect_error([] { parse_uint64("fingerprint", "0x1f", 16); },
               {"fingerprint must be a non-negative hexadecimal integer", "'0x1f'"});
  expect_error([] { parse_uint64("tokens", "18446744073709551616"); }, {"tokens", "in [0, "});
}

TEST(Parse, DoublesAreFinite) {
  EXPECT_EQ(parse_double("--lr", "3e-4"), 3e-4);
  EXPECT_EQ(parse_double("--lr", "-0.5"), -0.5);
  EXPECT_EQ(parse_double("--lr", "2"), 2.0);
  // Exactly the double the shortest-round-trip text stands for (the dataset index relies on it).
  EXPECT_EQ(parse_double("val_fraction", "0.1"), 0.1);
  for (const char* bad : {"", "x", "1.5x", "+1", " 1", "1e999"})
    expect_error([&] { parse_double("--lr", bad); }, {"--lr must be a number", bad});
  for (const char* bad : {"inf", "nan", "-inf"})
    expect_error([&] { parse_double("--lr", bad); }, {"--lr must be a finite number", bad});
}

TEST(Parse, FloatsAreRoundedOnceFromTheText) {
  EXPECT_EQ(parse_float("--lr", "3e-3"), 3e-3f);
  EXPECT_EQ(parse_float("--eps", "1e-8"), 1e-8f);
  // Just below the midpoint between 1 + 2^-23 and 1 + 2^-22: the nearest float is the lower
  // one, but the nearest double is the midpoint itself, which would round (to even) up.
  EXPECT_EQ(parse_float("--lr", "1.0000001788139343261718749"), std::nextafter(1.0f, 2.0f));
  for (const char* bad : {"", "x", "+1", "1e99"})
    expect_error([&] { parse_float("--lr", bad); }, {"--lr must be a number", bad});
  expect_error([] { parse_float("--lr", "inf"); }, {"--lr must be a finite number", "inf"});
}

TEST(Parse, IntLists) {
  EXPECT_EQ(parse_int_list("--pp-layers", "4,2,2"), (std::vector<int>{4, 2, 2}));
  EXPECT_EQ(parse_int_list("--pp-layers", "-1"), (std::vector<int>{-1}));
  for (const char* bad : {"", ",", "1,", ",1", "1,,2", "1, 2", "1;2", "a,b"})
    expect_error([&] { parse_int_list("--pp-layers", bad); },
                 {"--pp-layers must be a comma-separated list of integers",
                  std::string("got '") + bad + "'"});
}

}  // namespace
}  // namespace shardlm
