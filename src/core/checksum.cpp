#include "core/checksum.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace shardlm {

namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // CRC32C, reflected

// Slicing-by-8 tables for the portable path (table[0] is the classic byte table).
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][i] = c;
  }
  for (int s = 1; s < 8; ++s)
    for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  return t;
}

uint32_t crc32c_portable(uint32_t state, const unsigned char* p, size_t n) {
  static constexpr Tables t = make_tables();
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    word ^= state;  // little-endian: the state folds into the first four bytes
    state = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^
            t[4][(word >> 24) & 0xFF] ^ t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^
            t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFF];
  return state;
}

#if defined(__SSE4_2__)
uint32_t crc32c_hardware(uint32_t state, const unsigned char* p, size_t n) {
  uint64_t s = state;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    s = _mm_crc32_u64(s, word);
    p += 8;
    n -= 8;
  }
  auto s32 = static_cast<uint32_t>(s);
  while (n--) s32 = _mm_crc32_u8(s32, *p++);
  return s32;
}
#endif

}  // namespace

uint32_t crc32c_update(uint32_t crc, const void* data, size_t n_bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  const uint32_t state = ~crc;
#if defined(__SSE4_2__)
  return ~crc32c_hardware(state, p, n_bytes);
#else
  return ~crc32c_portable(state, p, n_bytes);
#endif
}

uint32_t crc32c_update_portable(uint32_t crc, const void* data, size_t n_bytes) {
  return ~crc32c_portable(~crc, static_cast<const unsigned char*>(data), n_bytes);
}

uint32_t crc32c_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path.string() + ": " + std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  uint32_t crc = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    crc = crc32c_update(crc, buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail("cannot read " + path.string() + ": " + std::strerror(errno));
  return crc;
}

}  // namespace shardlm
