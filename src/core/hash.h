// The project's two small hashes, defined once: FNV-1a 64 (stable identities: tokenizer
// fingerprints, config hashes, tensor-name keys) and SplitMix64's finaliser (a well-mixed
// 64-bit bijection for counter-based randomness and keyed permutations).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shardlm {

constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ull;

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h = kFnvOffsetBasis);
inline uint64_t fnv1a64(std::string_view bytes) {
  return fnv1a64(bytes.data(), bytes.size());
}

uint64_t splitmix64(uint64_t x);

}  // namespace shardlm
