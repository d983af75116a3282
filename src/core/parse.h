// Strict number parsing for flags, config keys and file fields: one implementation, so that
// every "--tp x" or "n_layer = 1e3" is refused the same way. The whole text must be one number
// in range: no surrounding space, no '+', no trailing characters, no hex unless asked for.
// Errors are shardlm::Error naming `what` (the flag or key, e.g. "--tp" or "[model] n_layer")
// and the text: "--tp must be an integer, got 'x'".
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace shardlm {

int parse_int(std::string_view what, std::string_view text);
int64_t parse_int64(std::string_view what, std::string_view text);
// `base` 16 takes hex digits only (callers strip a "0x" they accept).
uint64_t parse_uint64(std::string_view what, std::string_view text, int base = 10);
// A finite double in the shortest-round-trip syntax of std::from_chars (no "inf", "nan").
double parse_double(std::string_view what, std::string_view text);
// The same as a float, rounded once from the decimal text (through a double it could round
// twice and land on the neighbouring float).
float parse_float(std::string_view what, std::string_view text);
// "4,2,2": comma-separated ints, no empty items.
std::vector<int> parse_int_list(std::string_view what, std::string_view text);

}  // namespace shardlm
