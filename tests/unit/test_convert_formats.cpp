// The safetensors and GGUF writers and readers (src/convert/): round trips of every dtype,
// the on-disk layout the specs fix (header length, alignment, Q8_0 blocks), and truncated or
// corrupt files refused naming the file and the field. The consumers' own readers check the
// same files in tests/convert/ (label `convert`).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>
#include "convert/gguf.h"
#include "convert/safetensors.h"
#include "core/fs.h"

#include "support_errors.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("shardlm_test_convert_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::vector<float> ramp(int64_t n, float scale = 0.37f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.7f * static_cast<float>(i)) + 0.01f * i;
  return v;
}

void truncate(const fs::path& path, uint64_t keep) {
  fs::resize_file(path, keep);
}

fs::path write_safetensors(const std::string& name) {
  const fs::path path = scratch(name);
  const std::vector<float> a = ramp(6), b = ramp(12);
  std::vector<uint8_t> b16(b.size() * 2);
  convert_from_float(b.data(), DType::BF16, b16.data(), b.size());
  SafetensorsWriter w(path, {{"a", DType::F32, {2, 3}}, {"b", DType::BF16, {3, 4}}},
                      {{"format", "pt"}});
  w.append(a.data(), 8);  // a tensor may come in pieces
  w.append(reinterpret_cast<const uint8_t*>(a.data()) + 8, 16);
  w.append(b16.data(), b16.size());
  w.finish();
  return path;
}

TEST(Safetensors, RoundTripAndSpecLayout) {
  const fs::path path = write_safetensors("rt.safetensors");
  const std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "the data starts 8-byte aligned";
  EXPECT_EQ(bytes.size(), 8 + n + 6 * 4 + 12 * 2);
  EXPECT_NE(bytes.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos);

  SafetensorsReader r(path);
  ASSERT_EQ(r.entries().size(), 2u);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  const SafetensorsEntry* b = r.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{3, 4}));
  std::vector<float> got(5);
  r.read(*b, 7, 5, got.data());
  const std::vector<float> want = ramp(12);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(got[i], bf16_to_float(bf16_from_float(want[7 + i])));
  std::vector<float> a(6);
  r.read(*r.find("a"), 0, 6, a.data());
  EXPECT_EQ(a, ramp(6));
}

TEST(Safetensors, UnfinishedWriteLeavesNoFile) {
  const fs::path path = scratch("unfinished.safetensors");
  {
    SafetensorsWriter w(path, {{"a", DType::F32, {4}}}, {});
    const float x = 1.0f;
    w.append(&x, 4);
  }
  EXPECT_FALSE(fs::exists(path));
  fs::path tmp = path;
  EXPECT_FALSE(fs::exists(tmp += ".tmp"));
}

TEST(Safetensors, TruncatedOrCorruptRefusedNamingFileAndField) {
  const fs::path path = write_safetensors("bad.safetensors");
  const uint64_t size = fs::file_size(path);
  truncate(path, size - 3);
  testing::expect_error([&] { SafetensorsReader{path}; },
                        {path.string(), "tensor 'b'", "truncated"});
  truncate(path, 5);
  testing::expect_error([&] { SafetensorsReader{path}; }, {path.string(), "8-byte header length"});
  std::string text(8, '\0');
  const std::string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}";
  const uint64_t n = header.size();
  std::memcpy(text.data(), &n, 8);
  write_file_atomic(path, text + header + std::string(16, '\0'));
  testing::expect_error([&] { SafetensorsReader{path}; },
                        {"tensor 'a'", "data_offsets", "16 bytes"});
  write_file_atomic(path, text + std::string(n, '{'));
  testing::expect_error([&] { SafetensorsReader{path}; }, {path.string(), "not a JSON object"});
}

fs::path write_gguf(const std::string& name, GgufType matrix_type) {
  const fs::path path = scratch(name);
  GgufMetadata md = {{"general.architecture", std::string("llama")},
                     {"llama.block_count", uint32_t{2}},
                     {"llama.rope.freq_base", 10000.0f},
                     {"tokenizer.ggml.add_bos_token", false},
                     {"tokenizer.ggml.tokens", std::vector<std::string>{"<pad>", "a", "bc"}},
                     {"tokenizer.ggml.scores", std::vector<float>{0.0f, -1.0f, -2.0f}},
                     {"tokenizer.ggml.token_type", std::vector<int32_t>{3, 1, 1}}};
  GgufWriter w(path, md, {{"norm", {5}, GgufType::kF32}, {"m", {3, 64}, matrix_type}});
  w.append(ramp(5).data(), 5);
  const std::vector<float> m = ramp(192, 3.0f);
  w.append(m.data(), 64);  // whole rows at a time
  w.append(m.data() + 64, 128);
  w.finish();
  return path;
}

TEST(Gguf, RoundTripEveryTypeAligned) {
  const std::vector<float> m = ramp(192, 3.0f);
  for (GgufType type : {GgufType::kF32, GgufType::kF16, GgufType::kBF16, GgufType::kQ8_0}) {
    SCOPED_TRACE(gguf_type_name(type));
    GgufReader r(write_gguf(std::string("rt_") + gguf_type_name(type) + ".gguf", type));
    EXPECT_EQ(std::get<std::string>(r.value("general.architecture")), "llama");
    EXPECT_EQ(std::get<uint32_t>(r.value("general.alignment")), kGgufDefaultAlignment);
    EXPECT_EQ(std::get<uint32_t>(r.value("llama.block_count")), 2u);
    EXPECT_EQ(std::get<bool>(r.value("tokenizer.ggml.add_bos_token")), false);
    EXPECT_EQ(std::get<std::vector<std::string>>(r.value("tokenizer.ggml.tokens"))[2], "bc");
    EXPECT_EQ(std::get<std::vector<int32_t>>(r.value("tokenizer.ggml.token_type"))[0], 3);
    const GgufTensorInfo* t = r.find("m");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 64}));
    EXPECT_EQ(t->offset % kGgufDefaultAlignment, 0u);
    EXPECT_EQ(r.read(*r.find("norm")), ramp(5));
    const std::vector<float> got = r.read(*t);
    for (size_t i = 0; i < m.size(); ++i) {
      float want = m[i];
      if (type == GgufType::kF16) want = f16_to_float(f16_from_float(m[i]));
      if (type == GgufType::kBF16) want = bf16_to_float(bf16_from_float(m[i]));
      if (type == GgufType::kQ8_0) {
        float amax = 0;  // the block's scale: max |x| / 127, so the error is at most d / 2
        for (size_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j)
          amax = std::max(amax, std::fabs(m[j]));
        EXPECT_NEAR(got[i], m[i], amax / 127 * 0.5f * 1.01f + 1e-3f * amax / 127) << i;
      } else {
        EXPECT_EQ(got[i], want) << i;
      }
    }
  }
}

TEST(Gguf, Q8RowsMustBeWholeBlocks) {
  const std::vector<GgufTensorInfo> tensors = {{"m", {2, 40}, GgufType::kQ8_0}};
  testing::expect_error([&] { GgufWriter(scratch("q8.gguf"), {}, tensors); },
                        {"tensor m", "q8_0", "multiple of 32"});
}

TEST(Gguf, TruncatedOrCorruptRefusedNamingFileAndField) {
  const fs::path path = write_gguf("bad.gguf", GgufType::kF16);
  const uint64_t size = fs::file_size(path);
  truncate(path, size - 10);
  testing::expect_error([&] { GgufReader{path}; }, {path.string(), "tensor 'm'", "truncated"});
  truncate(path, 100);
  testing::expect_error([&] { GgufReader{path}; }, {path.string(), "metadata", "truncated"});
  std::string bytes = read_file(write_gguf("bad2.gguf", GgufType::kF32));
  bytes[0] = 'X';
  write_file_atomic(path, bytes);
  testing::expect_error([&] { GgufReader{path}; }, {path.string(), "magic"});
  bytes[0] = 'G';
  bytes[4] = 2;  // version
  write_file_atomic(path, bytes);
  testing::expect_error([&] { GgufReader{path}; }, {path.string(), "version 2"});
}

// The fuzzers' seeds (tests/fuzz/make_convert_seeds.py, encoded from the specs, not by the
// writers above) are files the readers accept and read whole: a refused seed would leave its
// fuzzer mutating a file that never gets past the first check. Regression inputs (regress_*)
// beside them are the fuzzers' findings, refused.
std::vector<fs::path> fuzz_seeds(const std::string& corpus, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& f :
       fs::directory_iterator(fs::path(SHARDLM_REPO_DIR) / "tests/fuzz/corpus" / corpus))
    if (f.path().filename().string().starts_with(prefix)) out.push_back(f.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Convert, FuzzSeedsAreValidFiles) {
  const std::vector<fs::path> st = fuzz_seeds("safetensors", "valid_");
  EXPECT_EQ(st.size(), 2u);
  for (const fs::path& p : st) {
    SCOPED_TRACE(p.string());
    SafetensorsReader r(p);
    EXPECT_FALSE(r.entries().empty());
    for (const SafetensorsEntry& e : r.entries()) {
      std::vector<float> v(static_cast<size_t>(e.numel()));  // [numel]
      r.read(e, 0, e.numel(), v.data());
    }
  }
  const std::vector<fs::path> gg = fuzz_seeds("gguf", "valid_");
  EXPECT_EQ(gg.size(), 3u);
  for (const fs::path& p : gg) {
    SCOPED_TRACE(p.string());
    GgufReader r(p);
    EXPECT_FALSE(r.metadata().empty());
    for (const GgufTensorInfo& t : r.tensors()) EXPECT_EQ(r.read(t).size(), t.numel());
  }
}

TEST(Convert, FuzzRegressionInputsAreRefused) {
  for (const fs::path& p : fuzz_seeds("safetensors", "regress_"))
    testing::expect_error([&] { SafetensorsReader{p}; }, {p.string()});
  for (const fs::path& p : fuzz_seeds("gguf", "regress_"))
    testing::expect_error([&] { GgufReader{p}; }, {p.string()});
}

}  // namespace
}  // namespace shardlm
