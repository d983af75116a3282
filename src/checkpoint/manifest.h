// The manifest of a checkpoint (manifest.h5, written by rank 0 at commit): every rank file,
// every stored rectangle with its checksum and dtype, and the run's metadata. Internal to
// src/checkpoint.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"

namespace shardlm {

inline constexpr const char* kManifestFileName = "manifest.h5";
inline constexpr const char* kCheckpointFormatName = "shardlm-checkpoint";

struct ManifestFile {
  std::string name;   // "rank_00003.h5"
  int64_t bytes = 0;  // size after commit: a different size means truncated or overwritten
  std::optional<uint32_t> crc32c;  // the whole file's; none in checkpoints written before it
};

struct Manifest {
  int64_t format_version = kCheckpointFormatVersion;  // 2 when a slice is not f32
  int64_t step = 0;
  std::vector<ManifestFile> files;  // index = world rank
  std::vector<StoredSlice> slices;  // grouped by rank, each rank's in save order
  std::string config_text;
  std::vector<uint8_t> tokenizer_model;
  Metadata metadata;
};

std::string rank_file_name(int rank);  // "rank_00003.h5"

// Writes and fsyncs `path`.
void write_manifest(const std::filesystem::path& path, const Manifest& manifest);
// Refuses a missing file, a manifest that does not match its manifest.crc32c sidecar (checked
// before HDF5 opens it), a foreign or unknown format version and a checksum mismatch, naming
// the file.
Manifest read_manifest(const std::filesystem::path& path);

// The run-wide part every checkpoint-like file carries (manifest, consolidated file): root
// attributes format/format_version/step and /config_text, /tokenizer_model, /metadata.
void write_run_info(hid_t file, int64_t format_version, int64_t step,
                    const std::string& config_text, const std::vector<uint8_t>& tokenizer_model,
                    const Metadata& metadata);

// Byte encoding of slice records, for gathering every rank's list on rank 0.
std::vector<uint8_t> encode_slices(const std::vector<StoredSlice>& slices);
std::vector<StoredSlice> decode_slices(const std::vector<uint8_t>& bytes);

// Every problem with how the slices describe their tensors: dtypes or global shapes that
// disagree, rectangles outside their tensor, elements that no slice stores. Empty when consistent.
std::vector<std::string> check_slice_coverage(const std::vector<StoredSlice>& slices);

// "param/h.0.attn.c_attn.weight"
std::string tensor_label(const std::string& role, const std::string& name);

}  // namespace shardlm
