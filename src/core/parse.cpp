#include "core/parse.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>

#include "core/error.h"

namespace shardlm {

namespace {

[[noreturn]] void refuse(std::string_view what, std::string_view kind, std::string_view text) {
  fail(std::string(what) + " must be " + std::string(kind) + ", got '" + std::string(text) + "'");
}

// errc() when the whole of `text` is one Number in range (from_chars: no space, no '+');
// result_out_of_range when it is a number too large for Number; else invalid_argument.
template <typename Number, typename... Base>
std::errc parse_into(std::string_view text, Number& value, Base... base) {
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value, base...);
  if (text.empty() || stop != end) return std::errc::invalid_argument;
  return ec;
}

template <typename Number, typename... Base>
Number parse_whole(std::string_view what, std::string kind, std::string_view text, Base... base) {
  Number value{};
  const std::errc ec = parse_into(text, value, base...);
  if constexpr (std::is_integral_v<Number>)
    if (ec == std::errc::result_out_of_range)
      kind += " in [" + std::to_string(std::numeric_limits<Number>::lowest()) + ", " +
              std::to_string(std::numeric_limits<Number>::max()) + "]";
  if (ec != std::errc()) refuse(what, kind, text);
  return value;
}

}  // namespace

int parse_int(std::string_view what, std::string_view text) {
  return parse_whole<int>(what, "an integer", text, 10);
}

int64_t parse_int64(std::string_view what, std::string_view text) {
  return parse_whole<int64_t>(what, "an integer", text, 10);
}

uint64_t parse_uint64(std::string_view what, std::string_view text, int base) {
  return parse_whole<uint64_t>(
      what, base == 16 ? "a non-negative hexadecimal integer" : "a non-negative integer", text,
      base);
}

double parse_double(std::string_view what, std::string_view text) {
  const double value = parse_whole<double>(what, "a number", text);
  if (!std::isfinite(value)) refuse(what, "a finite number", text);
  return value;
}

float parse_float(std::string_view what, std::string_view text) {
  const float value = parse_whole<float>(what, "a number", text);
  if (!std::isfinite(value)) refuse(what, "a finite number", text);
  return value;
}

std::vector<int> parse_int_list(std::string_view what, std::string_view text) {
  std::vector<int> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma - start);
    int value = 0;
    if (parse_into(item, value, 10) != std::errc())
      refuse(what, "a comma-separated list of integers", text);
    out.push_back(value);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

}  // namespace shardlm
