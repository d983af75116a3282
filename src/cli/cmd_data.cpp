// `shardlm data prepare|inspect`: text -> token shards (data/prepare.h), and a look at a
// prepared dataset that also validates every shard (data/loader.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"
#include "data/loader.h"
#include "data/prepare.h"

namespace shardlm::cli {
namespace {

std::string megabytes(double bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << bytes / 1e6 << " MB";
  return os.str();
}

// Progress on stderr: a redrawn bar on a terminal, a plain line every 10 s otherwise (logs).
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(STDERR_FILENO) == 1) {}

  void update(const PrepareProgress& p) {
    if (!tty_ && !p.finished && p.seconds - last_line_ < 10.0) return;
    last_line_ = p.seconds;
    const double fraction =
        p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total)
                      : 1.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    const double rate = p.seconds > 0 ? static_cast<double>(p.bytes_done) / p.seconds : 0.0;
    std::ostringstream line;
    line << "[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
         << std::setw(3) << static_cast<int>(fraction * 100) << "%  "
         << megabytes(static_cast<double>(p.bytes_done)) << " / "
         << megabytes(static_cast<double>(p.bytes_total)) << "  " << megabytes(rate) << "/s  "
         << p.tokens_done << " tokens";
    if (tty_)
      std::cerr << "\r" << line.str() << (p.finished ? "\n" : "") << std::flush;
    else
      std::cerr << line.str() << "\n";
  }

 private:
  bool tty_;
  double last_line_ = -1e9;
};

int data_prepare(const std::vector<std::string>& args) {
  PrepareOptions o;
  int64_t shard_tokens = static_cast<int64_t>(o.shard_tokens),
          block_bytes = static_cast<int64_t>(o.block_bytes);
  bool quiet = false;
  po::options_description opts("Options");
  opts.add_options()(
      "input", po::value(&o.input_files)->multitoken()->required(),
      "UTF-8 text files; each file is one document (documents are separated by EOS)")(
      "tokenizer", po::value(&o.tokenizer_path)->required(),
      "a SentencePiece .model or a byte-level BPE tokenizer.json (GPT-2's kind; copied into "
      "--out)")("out", po::value(&o.out_dir)->required(),
                "output directory for the shards, the tokenizer and index.txt")(
      "val-fraction", po::value(&o.val_fraction)->default_value(o.val_fraction, "0.01"),
      "fraction of text blocks that go to the val split, in [0, 1)")(
      "shard-tokens", po::value(&shard_tokens)->default_value(shard_tokens),
      "at most this many tokens per shard file")(
      "block-bytes", po::value(&block_bytes)->default_value(block_bytes),
      "size of the text blocks (cut at line ends) that are assigned to train or val")(
      "threads", po::value(&o.num_threads)->default_value(0), "encoder threads; 0 = all cores")(
      "overwrite", po::bool_switch(&o.overwrite), "replace an existing dataset in --out")(
      "quiet", po::bool_switch(&quiet), "no progress bar");
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm data prepare --input FILE... --tokenizer MODEL --out DIR [options]", opts, args,
          vm))
    return *rc;
  if (shard_tokens <= 0)
    fail("--shard-tokens must be positive, got " + std::to_string(shard_tokens));
  if (block_bytes <= 0) fail("--block-bytes must be positive, got " + std::to_string(block_bytes));
  o.shard_tokens = static_cast<uint64_t>(shard_tokens);
  o.block_bytes = static_cast<uint64_t>(block_bytes);

  ProgressBar bar;
  const auto result = prepare_token_shards(o, [&](const PrepareProgress& p) {
    if (!quiet) bar.update(p);
  });
  std::cout << "prepared " << o.out_dir << ": " << result.input_bytes << " bytes -> "
            << result.tokens << " tokens in " << std::fixed << std::setprecision(2)
            << result.seconds << " s ("
            << megabytes(static_cast<double>(result.input_bytes) / std::max(result.seconds, 1e-9))
            << "/s)\n";
  for (const char* split : {"train", "val"}) {
    uint64_t tokens = 0, bytes = 0;
    const auto shards = result.index.split_shards(split);
    for (const auto& s : shards) tokens += s.tokens, bytes += s.text_bytes;
    std::cout << "  " << std::left << std::setw(6) << split << std::right << shards.size()
              << " shards, " << tokens << " tokens, " << bytes << " text bytes";
    if (tokens)
      std::cout << ", " << std::setprecision(3)
                << static_cast<double>(bytes) / static_cast<double>(tokens) << " bytes/token";
    std::cout << "\n";
  }
  return shardlm::kExitOk;
}

int data_inspect(const std::vector<std::string>& args) {
  std::string dir;
  po::options_description opts("Options");
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dir)->required(), "dataset directory");
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  if (auto rc =
          parse_options("shardlm data inspect DIR    (prints shard headers; validates every shard)",
                        opts, hidden, positional, args, vm))
    return *rc;

  const DatasetIndex index = read_dataset_index(dir);
  open_dataset_tokenizer(dir, index);  // refuses a damaged tokenizer file
  char fingerprint[19];
  std::snprintf(fingerprint, sizeof fingerprint, "0x%016llx",
                static_cast<unsigned long long>(index.tokenizer_fingerprint));
  std::cout << "dataset        " << dir << "\n"
            << "tokenizer      " << index.tokenizer_file << "  fingerprint " << fingerprint
            << "  vocab " << index.vocab_size << "\n"
            << "prepared with  val_fraction " << index.val_fraction << "  block_bytes "
            << index.block_bytes << "  shard_tokens " << index.shard_tokens << "\n\n";
  std::cout << std::left << std::setw(18) << "shard" << std::right << std::setw(8) << "dtype"
            << std::setw(14) << "tokens" << std::setw(14) << "text_bytes" << std::setw(11)
            << "documents" << std::setw(13) << "bytes/token" << std::setw(12) << "crc32c"
            << "\n";
  for (const char* split : {"train", "val"}) {
    if (index.split_shards(split).empty()) {
      std::cout << std::left << std::setw(18) << (std::string(split) + " (none)") << std::right
                << "\n";
      continue;
    }
    const TokenDataset data(dir, split);  // validates every shard of the split
    for (const auto& shard : data.shards()) {
      const auto& h = shard.header();
      char crc[11];
      std::snprintf(crc, sizeof crc, "0x%08x", h.payload_crc32c);
      std::cout << std::left << std::setw(18)
                << std::filesystem::path(shard.path()).filename().string() << std::right
                << std::setw(8) << (h.token_bytes == 2 ? "uint16" : "uint32") << std::setw(14)
                << h.token_count << std::setw(14) << h.text_bytes << std::setw(11)
                << h.document_count << std::setw(13) << std::fixed << std::setprecision(3)
                << (h.token_count
                        ? static_cast<double>(h.text_bytes) / static_cast<double>(h.token_count)
                        : 0.0)
                << std::setw(12) << crc << "\n";
    }
    std::cout << std::left << std::setw(18) << (std::string(split) + " total") << std::right
              << std::setw(8) << "" << std::setw(14) << data.token_count() << std::setw(14)
              << data.text_bytes() << std::setw(11) << "" << std::setw(13)
              << static_cast<double>(data.text_bytes()) /
                     static_cast<double>(std::max<uint64_t>(1, data.token_count()))
              << "\n";
  }
  std::cout
      << "\nall shards valid (magic, version, sizes, checksums, token ids, index, tokenizer)\n";
  return shardlm::kExitOk;
}

int cmd_data(const std::vector<std::string>& args) {
  return run_subcommand("data",
                        {{"prepare", "encode text files into train/val token shards", data_prepare},
                         {"inspect", "print and validate a prepared dataset", data_inspect}},
                        args);
}

const CommandRegistrar reg("data", "prepare and inspect token shard datasets", cmd_data);

}  // namespace
}  // namespace shardlm::cli
