#include "checkpoint/file_checksums.h"

#include <cstdio>
#include <sstream>
#include <vector>

#include "core/checksum.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

fs::path sidecar_of(const fs::path& manifest_path) {
  return manifest_path.parent_path() / kManifestSidecarName;
}

struct Sidecar {
  uint32_t crc = 0;
  int64_t bytes = 0;
};

// The sidecar is one line: "crc32c 0x<8 hex digits> bytes <decimal>\n".
Sidecar parse_sidecar(const fs::path& path, const std::string& text) {
  std::istringstream in(text);
  std::string k1, crc, k2, bytes, rest;
  in >> k1 >> crc >> k2 >> bytes;
  const bool well_formed = k1 == "crc32c" && k2 == "bytes" && crc.size() == 10 &&
                           crc.rfind("0x", 0) == 0 && !(in >> rest) &&
                           text == "crc32c " + crc + " bytes " + bytes + "\n";
  if (!well_formed)
    fail(path.string() +
         " is not a manifest checksum file (expected \"crc32c 0x<hex> bytes <n>\")");
  const std::string what = path.string();
  return {static_cast<uint32_t>(parse_uint64(what + " crc32c", crc.substr(2), 16)),
          parse_int64(what + " bytes", bytes)};
}

}  // namespace

void write_manifest_sidecar(const fs::path& manifest_path) {
  const auto bytes = static_cast<int64_t>(fs::file_size(manifest_path));
  write_file_atomic(sidecar_of(manifest_path), "crc32c " + hex32(crc32c_file(manifest_path)) +
                                                   " bytes " + std::to_string(bytes) + "\n");
}

void check_manifest_sidecar(const fs::path& manifest_path) {
  const fs::path path = sidecar_of(manifest_path);
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  const Sidecar expected = parse_sidecar(path, read_file(path));
  const auto bytes = static_cast<int64_t>(fs::file_size(manifest_path, ec));
  if (ec) fail("cannot stat " + manifest_path.string() + ": " + ec.message());
  if (bytes != expected.bytes)
    fail(manifest_path.string() + " is " + std::to_string(bytes) + " bytes, " + path.string() +
         " records " + std::to_string(expected.bytes) + ": the manifest is damaged");
  const std::string problem = file_checksum_problem(manifest_path, expected.crc);
  if (!problem.empty()) fail(problem + " (recorded in " + path.string() + ")");
}

std::string file_checksum_problem(const fs::path& path, uint32_t expected) {
  const uint32_t actual = crc32c_file(path);
  if (actual == expected) return "";
  return path.string() + ": whole-file CRC32C is " + hex32(actual) + ", the checkpoint records " +
         hex32(expected) + ": the file is damaged";
}

}  // namespace shardlm
