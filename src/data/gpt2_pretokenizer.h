// GPT-2's pre-tokenizer: the regular expression of the `tokenizers` ByteLevel pre-tokenizer,
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out as a scanner over characters, with the meaning Oniguruma (the library's regex
// engine) gives the classes: \p{L} general category L, \p{N} category N, \s U+0009..U+000D,
// U+0085 and categories Zs, Zl, Zp. Categories come from ICU (u_charType). Every character is
// in exactly one piece and pieces are in text order, so the pieces concatenated are the text.
//
// Text that is not UTF-8 is read byte by byte: a byte that starts no valid UTF-8 sequence is one
// character of class kOther (the library itself takes only valid UTF-8).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace shardlm {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

// One character of a text: its first byte, its byte length and class; `code` is the code point
// (for an invalid byte, the byte).
struct TextChar {
  uint32_t offset = 0;
  uint8_t bytes = 1;
  CharClass cls = CharClass::kOther;
  char32_t code = 0;
};

// The characters of `text`, in order (clears `out` first).
void split_chars(std::string_view text, std::vector<TextChar>& out);

// The pre-tokens of `text`, in order, as views into it (clears `pieces` first). `chars` is
// scratch space.
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces,
                      std::vector<TextChar>& chars);

}  // namespace shardlm
