#include "data/gpt2_pretokenizer.h"

#include <unicode/uchar.h>

#include <array>

namespace shardlm {

namespace {

CharClass unicode_class(char32_t c) {
  // Oniguruma's \s beyond the categories: TAB, LF, VT, FF, CR and NEL (all category Cc).
  if ((c >= 0x09 && c <= 0x0D) || c == 0x85) return CharClass::kSpace;
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  if (mask & U_GC_Z_MASK) return CharClass::kSpace;  // Zs, Zl, Zp
  return CharClass::kOther;
}

// ASCII is most text: its classes once.
const std::array<CharClass, 128>& ascii_classes() {
  static const std::array<CharClass, 128> table = [] {
    std::array<CharClass, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = unicode_class(c);
    return t;
  }();
  return table;
}

bool continuation(std::string_view s, size_t i) {
  return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
}

// The well-formed UTF-8 sequence at `i` (Unicode's table 3-7: no overlong forms, surrogates or
// code points above U+10FFFF): its length and code point; length 0 when there is none.
uint8_t utf8_sequence(std::string_view s, size_t i, char32_t& code) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char lead = b(0);
  int n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + static_cast<size_t>(n) > s.size() || b(1) < lo || b(1) > hi) return 0;
  for (int k = 2; k < n; ++k)
    if (!continuation(s, i + static_cast<size_t>(k))) return 0;
  code = lead & (0xFF >> (n + 1));
  for (int k = 1; k < n; ++k) code = (code << 6) | (b(static_cast<size_t>(k)) & 0x3F);
  return static_cast<uint8_t>(n);
}

// Chars [i, end) of one class.
size_t run_end(const std::vector<TextChar>& c, size_t i, CharClass cls) {
  while (i < c.size() && c[i].cls == cls) ++i;
  return i;
}

// The contraction ('s 't 're 've 'm 'll 'd) at char i: its length in chars, or 0.
size_t contraction(std::string_view text, const std::vector<TextChar>& c, size_t i) {
  if (c[i].code != '\'') return 0;
  const std::string_view rest = text.substr(c[i].offset + 1);
  for (std::string_view two : {"re", "ve", "ll"})
    if (rest.starts_with(two)) return 3;
  for (char one : {'s', 't', 'm', 'd'})
    if (!rest.empty() && rest.front() == one) return 2;
  return 0;
}

// Where the piece that starts at char i ends (a char index): the regex's alternatives in order.
size_t piece_end(std::string_view text, const std::vector<TextChar>& c, size_t i) {
  if (const size_t n = contraction(text, c, i)) return i + n;
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one class.
  const size_t first = c[i].code == ' ' && i + 1 < c.size() ? i + 1 : i;
  for (CharClass cls : {CharClass::kLetter, CharClass::kNumber, CharClass::kOther})
    for (size_t start : {first, i})
      if (c[start].cls == cls && (start == i || c[i].code == ' ')) return run_end(c, start, cls);
  // `\s+(?!\S)`: a whitespace run, less its last character when a non-space follows it (that
  // character then leads the next piece); `\s+` takes a single whitespace before a non-space.
  const size_t end = run_end(c, i, CharClass::kSpace);
  if (end == c.size() || end - i == 1) return end;
  return end - 1;
}

}  // namespace

void split_chars(std::string_view text, std::vector<TextChar>& out) {
  out.clear();
  const auto& ascii = ascii_classes();
  for (size_t i = 0; i < text.size();) {
    TextChar ch;
    ch.offset = static_cast<uint32_t>(i);
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ch.code = lead;
      ch.cls = ascii[lead];
    } else if (const uint8_t n = utf8_sequence(text, i, ch.code)) {
      ch.bytes = n;
      ch.cls = unicode_class(ch.code);
    } else {
      ch.code = lead;  // not UTF-8: one byte, class kOther
    }
    out.push_back(ch);
    i += ch.bytes;
  }
}

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces,
                      std::vector<TextChar>& chars) {
  pieces.clear();
  split_chars(text, chars);
  for (size_t i = 0; i < chars.size();) {
    const size_t end = piece_end(text, chars, i);
    const size_t to = end < chars.size() ? chars[end].offset : text.size();
    pieces.push_back(text.substr(chars[i].offset, to - chars[i].offset));
    i = end;
  }
}

}  // namespace shardlm
