// Shared set-up for the data-pipeline tests: scratch directories and a small tokenizer trained
// once per test binary on a slice of data/tinyshakespeare.txt.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "data/tokenizer.h"

namespace shardlm::testing {

// A fresh directory under the system temp dir; the fixture that asks for it removes it.
inline std::filesystem::path make_scratch_dir(const std::string& tag) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / ("shardlm-" + tag + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  return tmpl;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::filesystem::path shakespeare_path() {
  return std::filesystem::path(SHARDLM_REPO_DIR) / "data" / "tinyshakespeare.txt";
}

// The first `bytes` of Tiny Shakespeare, cut after a newline.
inline std::string shakespeare_slice(size_t bytes) {
  std::string text = read_file(shakespeare_path());
  if (text.size() > bytes) text.resize(text.rfind('\n', bytes) + 1);
  return text;
}

// Trains (once per process) a 512-piece BPE model on 200 KB of Tiny Shakespeare into `dir`.
inline std::string tiny_tokenizer_model(const std::filesystem::path& dir) {
  const auto model = dir / "tiny.model";
  if (std::filesystem::exists(model)) return model.string();
  const auto corpus = dir / "tiny-train.txt";
  write_file(corpus, shakespeare_slice(200'000));
  TokenizerTrainOptions options;
  options.input_files = {corpus.string()};
  options.model_prefix = (dir / "tiny").string();
  options.vocab_size = 512;
  options.character_coverage = 1.0;
  train_tokenizer(options);
  return model.string();
}

}  // namespace shardlm::testing
