#include "data/byte_level.h"

#include <array>

namespace shardlm {

namespace {

// Byte values that stand for themselves (encoder.py's `bs`).
bool self_mapped(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else {  // the alphabet ends at U+0143: two bytes at most
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// The 68 remapped bytes take U+0100 to U+0143.
constexpr char32_t kAlphabetEnd = 0x144;

struct Alphabet {
  std::array<std::string, 256> text;      // byte -> its character, UTF-8
  std::array<int, kAlphabetEnd> byte_of;  // character -> byte, -1 for none
  Alphabet() {
    byte_of.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = self_mapped(b) ? static_cast<char32_t>(b) : next++;
      text[b] = utf8(c);
      byte_of[c] = b;
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

const std::string& byte_level_char(uint8_t b) {
  return alphabet().text[b];
}

int byte_level_byte(char32_t c) {
  return c < kAlphabetEnd ? alphabet().byte_of[c] : -1;
}

}  // namespace shardlm
