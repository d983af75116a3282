// Whole-file checksums, checked before HDF5 parses a checkpoint file: the HDF5 library trusts
// its own structures and can crash (SIGSEGV) on a damaged file, so a file whose bytes changed
// must be refused before it reaches H5Fopen. Rank files' CRC32C are listed in the manifest
// (/files/crc32c); the manifest's own is in a small text sidecar, manifest.crc32c, written in the
// same commit. Checkpoints from before these checksums have neither and load as they did.
// Internal to src/checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace shardlm {

inline constexpr const char* kManifestSidecarName = "manifest.crc32c";

// Writes <manifest's folder>/manifest.crc32c for the finished manifest (atomic, fsynced).
void write_manifest_sidecar(const std::filesystem::path& manifest_path);

// Refuses, naming both files, a manifest whose size or CRC32C differ from its sidecar's, and a
// sidecar that does not parse. Does nothing when there is no sidecar (an older checkpoint).
void check_manifest_sidecar(const std::filesystem::path& manifest_path);

// "" when `path`'s whole-file CRC32C is `expected`, else the problem, naming the file.
std::string file_checksum_problem(const std::filesystem::path& path, uint32_t expected);

}  // namespace shardlm
