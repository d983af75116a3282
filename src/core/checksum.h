// CRC32C (Castagnoli), the checksum of every tensor dataset in a checkpoint. Chosen because
// x86-64 computes it in hardware (SSE4.2 `crc32`), so checksumming runs far faster than the
// disk; a table-driven fallback gives the same values on other CPUs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace shardlm {

// Streaming form: crc32c_update(crc32c_update(0, a, na), b, nb) == crc32c(a ++ b).
uint32_t crc32c_update(uint32_t crc, const void* data, size_t n_bytes);

// The table-driven path alone (what crc32c_update uses without SSE4.2); the tests compare the two.
uint32_t crc32c_update_portable(uint32_t crc, const void* data, size_t n_bytes);

inline uint32_t crc32c(const void* data, size_t n_bytes) {
  return crc32c_update(0, data, n_bytes);
}

// CRC32C of a whole file's bytes, streamed through a 1 MiB buffer; throws naming the path when
// it cannot be read.
uint32_t crc32c_file(const std::filesystem::path& path);

}  // namespace shardlm
