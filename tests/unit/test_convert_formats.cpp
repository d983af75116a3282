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
#include "core/error.h"
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

// The fuzzers' inputs (tests/fuzz/corpus/<name>/): valid_* seeds, encoded from the specs by
// tests/fuzz/make_convert_seeds.py (not by the writers above), and regress_* inputs the
// fuzzers found. Each is read whole or refused naming the file, as the fuzzers require
// (the sanitizer build replays them there; these tests replay them in every build).
std::vector<fs::path> fuzz_inputs(const std::string& corpus, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& f :
       fs::directory_iterator(fs::path(SHARDLM_REPO_DIR) / "tests/fuzz/corpus" / corpus))
    if (f.path().filename().string().starts_with(prefix)) out.push_back(f.path());
  std::sort(out.begin(), out.end());
  return out;
}

void read_safetensors_whole(const fs::path& p) {
  SafetensorsReader r(p);
  for (const SafetensorsEntry& e : r.entries()) {
    std::vector<float> v(static_cast<size_t>(e.numel()));  // [numel]
    r.read(e, 0, e.numel(), v.data());
  }
}

void read_gguf_whole(const fs::path& p) {
  GgufReader r(p);
  for (const GgufTensorInfo& t : r.tensors()) EXPECT_EQ(r.read(t).size(), t.numel());
}

// A refusal must name the file; an input that is a valid file reads whole.
template <typename Read>
void expect_read_or_refused(const fs::path& p, Read read) {
  SCOPED_TRACE(p.string());
  try {
    read(p);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
}

// A refused seed would leave its fuzzer mutating a file that never gets past the first check.
TEST(Convert, FuzzSeedsAreValidFiles) {
  const std::vector<fs::path> st = fuzz_inputs("safetensors", "valid_");
  EXPECT_EQ(st.size(), 2u);
  for (const fs::path& p : st) EXPECT_NO_THROW(read_safetensors_whole(p)) << p;
  const std::vector<fs::path> gg = fuzz_inputs("gguf", "valid_");
  EXPECT_EQ(gg.size(), 3u);
  for (const fs::path& p : gg) EXPECT_NO_THROW(read_gguf_whole(p)) << p;
}

// What the fuzzers and their review found, refused naming the tensor or key and the fault:
// shapes whose element count overflows, offsets that wrap around past the end (they read the
// header as data), an array count that sized a 512 GB allocation, q8_0 rows that are not
// whole blocks (the last elements were dropped), a zero dimension after dimensions whose product
// overflows (the count was multiplied before the 0: UBSan, in make test-sanitize's fuzz_gguf).
TEST(Convert, HostileShapesCountsAndOffsetsRefusedNamingTheField) {
  const fs::path st = fs::path(SHARDLM_REPO_DIR) / "tests/fuzz/corpus/safetensors";
  const fs::path st_numel = st / "regress_numel_overflow", st_wrap = st / "regress_offsets_wrap";
  testing::expect_error(
      [&] { read_safetensors_whole(st_numel); },
      {st_numel.string(), "tensor 'a'", "[4294967296, 4294967296]", "more elements"});
  testing::expect_error([&] { read_safetensors_whole(st_wrap); },
                        {st_wrap.string(), "tensor 'a'", "18446744073709551612", "truncated"});
  const fs::path gg = fs::path(SHARDLM_REPO_DIR) / "tests/fuzz/corpus/gguf";
  const fs::path numel = gg / "regress_numel_overflow", wrap = gg / "regress_offset_wrap",
                 array = gg / "regress_huge_array", q8 = gg / "regress_q8_partial_block",
                 zero_dim = gg / "regress_zero_dim_overflow";
  testing::expect_error(
      [&] { read_gguf_whole(numel); },
      {numel.string(), "tensor 'm'", "[4294967296, 4294967296]", "more elements"});
  testing::expect_error([&] { read_gguf_whole(wrap); },
                        {wrap.string(), "tensor 'm'", "offset 18446744073709551584", "truncated"});
  testing::expect_error([&] { read_gguf_whole(array); },
                        {array.string(), "metadata 'k'", "truncated"});
  testing::expect_error([&] { read_gguf_whole(q8); },
                        {q8.string(), "tensor 'q'", "q8_0", "rows of 33"});
  testing::expect_error(
      [&] { read_gguf_whole(zero_dim); },
      {zero_dim.string(), "tensor 'q'", "[576460752343793664, 65536, 0, 0]", "overflows int64"});
}

TEST(Convert, FuzzRegressionInputsAreReadOrRefusedNamingTheFile) {
  for (const fs::path& p : fuzz_inputs("safetensors", "regress_"))
    expect_read_or_refused(p, read_safetensors_whole);
  for (const fs::path& p : fuzz_inputs("gguf", "regress_"))
    expect_read_or_refused(p, read_gguf_whole);
}

}  // namespace
}  // namespace shardlm
