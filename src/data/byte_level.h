// GPT-2's byte-level alphabet (openai/gpt-2 encoder.py bytes_to_unicode, the `tokenizers`
// ByteLevel pre-tokenizer): each of the 256 byte values stands for one printable character, so
// that a byte-level BPE vocabulary is made of text. The printable Latin-1 bytes ('!'..'~',
// U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 bytes, in increasing
// order, for U+0100, U+0101, ... (so the space 0x20 is U+0120 'Ġ' and '\n' is U+010A 'Ċ').
#pragma once

#include <cstdint>
#include <string>

namespace shardlm {

// The character byte `b` stands for, as UTF-8.
const std::string& byte_level_char(uint8_t b);
// The byte the character `c` stands for; -1 when `c` is not one of the 256.
int byte_level_byte(char32_t c);

}  // namespace shardlm
