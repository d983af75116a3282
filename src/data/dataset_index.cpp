#include "data/dataset_index.h"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "core/checksum.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/parse.h"

namespace shardlm {

namespace {
// Format 2 ends with "crc32c 0x<8 hex>\n", the CRC32C of every byte before that line, so that a
// damaged index (a flipped digit, a lost line) is refused; format 1 (no checksum) still reads.
constexpr int kIndexFormat = 2;
constexpr int kOldestIndexFormat = 1;
constexpr std::string_view kChecksumKey = "crc32c ";

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// The index text without its checksum line, after checking that line (the text itself when it
// has none, as in format 1).
std::string_view checked_body(const std::string& path, std::string_view text) {
  const size_t last_line =
      text.size() >= 2 ? text.rfind('\n', text.size() - 2) : std::string_view::npos;
  const size_t start = last_line == std::string_view::npos ? 0 : last_line + 1;
  const std::string_view line = text.substr(start);
  if (!line.starts_with(kChecksumKey)) return text;
  const std::string_view hex = line.substr(kChecksumKey.size());
  const bool well_formed = hex.size() == 11 && hex.starts_with("0x") && hex.back() == '\n';
  const uint32_t stored = well_formed
                              ? static_cast<uint32_t>(parse_uint64(
                                    "dataset index '" + path + "' crc32c", hex.substr(2, 8), 16))
                              : 0;
  const uint32_t computed = crc32c(text.data(), start);
  if (!well_formed || stored != computed)
    fail("dataset index '" + path + "' is damaged: its crc32c line " +
         (well_formed ? "records " + hex32(stored) + ", the contents give " + hex32(computed)
                      : "is malformed"));
  return text.substr(0, start);
}
}  // namespace

std::vector<DatasetShardEntry> DatasetIndex::split_shards(const std::string& split) const {
  std::vector<DatasetShardEntry> out;
  for (const auto& s : shards)
    if (s.split == split) out.push_back(s);
  return out;
}

void write_dataset_index(const std::string& dir, const DatasetIndex& index) {
  const auto path = std::filesystem::path(dir) / kDatasetIndexFile;
  std::ostringstream out;
  char fingerprint[19];
  std::snprintf(fingerprint, sizeof fingerprint, "0x%016llx",
                static_cast<unsigned long long>(index.tokenizer_fingerprint));
  out << "# shardlm token dataset; format: docs/data-format.md\n";
  for (const char* split : {"train", "val"}) {
    uint64_t tokens = 0, bytes = 0;
    const auto shards = index.split_shards(split);
    for (const auto& s : shards) tokens += s.tokens, bytes += s.text_bytes;
    out << "# " << split << ": " << shards.size() << " shards, " << tokens << " tokens, " << bytes
        << " text bytes";
    if (tokens > 0)
      out << ", " << static_cast<double>(bytes) / static_cast<double>(tokens) << " bytes/token";
    out << "\n";
  }
  // Shortest text that reads back as the same double.
  char fraction[32];
  const auto fraction_end =
      std::to_chars(fraction, fraction + sizeof fraction, index.val_fraction).ptr;
  out << "format " << kIndexFormat << "\n"
      << "tokenizer " << index.tokenizer_file << "\n"
      << "tokenizer_fingerprint " << fingerprint << "\n"
      << "vocab_size " << index.vocab_size << "\n"
      << "val_fraction " << std::string_view(fraction, static_cast<size_t>(fraction_end - fraction))
      << "\n"
      << "block_bytes " << index.block_bytes << "\n"
      << "shard_tokens " << index.shard_tokens << "\n"
      << "# shard <split> <file> <tokens> <text_bytes> <documents>\n";
  for (const auto& s : index.shards)
    out << "shard " << s.split << " " << s.file << " " << s.tokens << " " << s.text_bytes << " "
        << s.documents << "\n";
  const std::string body = out.str();
  write_file_atomic(
      path, body + std::string(kChecksumKey) + hex32(crc32c(body.data(), body.size())) + "\n");
}

DatasetIndex read_dataset_index(const std::string& dir) {
  const auto path = (std::filesystem::path(dir) / kDatasetIndexFile).string();
  if (!std::filesystem::is_regular_file(path))
    fail("cannot open dataset index '" + path +
         "': not a prepared dataset directory (run `shardlm data prepare`), "
         "or preparation did not finish");
  const std::string text = read_file(path);
  const std::string_view body = checked_body(path, text);
  const bool has_checksum = body.size() != text.size();
  std::istringstream in{std::string(body)};
  DatasetIndex index;
  bool seen_format = false, seen_fingerprint = false, seen_vocab = false;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    const std::string where = "dataset index '" + path + "' line " + std::to_string(line_no);
    const auto bad = [&](const std::string& why) { fail(where + ": " + why + ": '" + line + "'"); };
    // The next field's text; its number is parsed (core/parse) under a name with the location.
    const auto next = [&](const char* field) {
      std::string word;
      if (!(fields >> word)) bad(std::string("missing ") + field);
      return word;
    };
    const auto uint64_field = [&](const char* field) {
      return parse_uint64(where + ": " + field, next(field));
    };
    if (key == "format") {
      const int format = parse_int(where + ": format", next("format"));
      if (format < kOldestIndexFormat || format > kIndexFormat)
        bad("unsupported index format " + std::to_string(format) + " (this build reads " +
            std::to_string(kOldestIndexFormat) + " to " + std::to_string(kIndexFormat) + ")");
      if ((format >= 2) != has_checksum)
        bad(has_checksum ? "a format 1 index has no crc32c line: the file is damaged"
                         : "the crc32c line that ends a format 2 index is missing: the file is "
                           "damaged or truncated");
      seen_format = true;
    } else if (key == "tokenizer") {
      std::string file;
      if (!(fields >> file) || (file != kDatasetTokenizerFile && file != kDatasetTokenizerJsonFile))
        bad("expected 'tokenizer " + std::string(kDatasetTokenizerFile) + "' or 'tokenizer " +
            kDatasetTokenizerJsonFile + "'");
      index.tokenizer_file = file;
    } else if (key == "tokenizer_fingerprint") {
      const std::string hex = next("tokenizer_fingerprint");
      index.tokenizer_fingerprint =
          parse_uint64(where + ": tokenizer_fingerprint",
                       hex.starts_with("0x") ? std::string_view(hex).substr(2) : hex, 16);
      seen_fingerprint = true;
    } else if (key == "vocab_size") {
      const uint64_t vocab = uint64_field("vocab_size");
      if (vocab == 0 || vocab > UINT32_MAX) bad("vocab size out of range");
      index.vocab_size = static_cast<uint32_t>(vocab);
      seen_vocab = true;
    } else if (key == "val_fraction") {
      index.val_fraction = parse_double(where + ": val_fraction", next("val_fraction"));
    } else if (key == "block_bytes") {
      index.block_bytes = uint64_field("block_bytes");
    } else if (key == "shard_tokens") {
      index.shard_tokens = uint64_field("shard_tokens");
    } else if (key == "shard") {
      DatasetShardEntry e;
      if (!(fields >> e.split >> e.file)) bad("malformed shard line");
      e.tokens = uint64_field("shard tokens");
      e.text_bytes = uint64_field("shard text_bytes");
      e.documents = uint64_field("shard documents");
      if (e.split != "train" && e.split != "val") bad("unknown split '" + e.split + "'");
      if (e.file.find('/') != std::string::npos)
        bad("shard file names must be plain names inside the directory");
      index.shards.push_back(std::move(e));
    } else {
      bad("unknown key '" + key + "'");
    }
    std::string extra;
    if (fields >> extra) bad("unexpected trailing field '" + extra + "'");
  }
  if (!seen_format || !seen_fingerprint || !seen_vocab)
    fail("dataset index '" + path +
         "' is incomplete: it needs 'format', 'tokenizer_fingerprint' and 'vocab_size' lines");
  return index;
}

Tokenizer open_dataset_tokenizer(const std::string& dir, const DatasetIndex& index) {
  const auto path = (std::filesystem::path(dir) / index.tokenizer_file).string();
  if (!std::filesystem::is_regular_file(path))
    fail("dataset '" + dir + "' has no " + index.tokenizer_file +
         " (prepare it with `shardlm data prepare`)");
  // Compared before parsing: the file's bytes never reach a parser unless they are the ones
  // the dataset was prepared with.
  std::string bytes = read_file(path);
  if (const uint64_t fingerprint = fnv1a64(bytes); fingerprint != index.tokenizer_fingerprint) {
    char got[19], want[19];
    std::snprintf(got, sizeof got, "0x%016llx", static_cast<unsigned long long>(fingerprint));
    std::snprintf(want, sizeof want, "0x%016llx",
                  static_cast<unsigned long long>(index.tokenizer_fingerprint));
    fail("tokenizer '" + path + "' has fingerprint " + got + ", the dataset index records " + want +
         ": the file is damaged or was replaced");
  }
  Tokenizer tok = Tokenizer::from_serialized(std::move(bytes), "'" + path + "'");
  if (index.tokenizer_file != tok.file_name())
    fail("tokenizer '" + path + "' holds a " + tok.file_name() + ", not a " + index.tokenizer_file);
  return tok;
}

}  // namespace shardlm
