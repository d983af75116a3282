// Checkpoint slices in f32, bf16 and f16: saved as given, read back as fp32 (exact where the
// value is representable, rounded where not), recorded in the manifest and the rank files,
// kept by verify/consolidate/inspect, refused when corrupted, versioned so that fp32
// checkpoints stay version 1, and readable with h5py exactly as docs/checkpoint-format.md says.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/rect.h"
#include "checkpoint_test_support.h"
#include "core/checksum.h"
#include "core/dtype.h"
#include "parallel/self_comm.h"
#include "support_errors.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using testing::data_offset;
using testing::drop_whole_file_checksums;
using testing::expect_error;
using testing::flip_byte;
using testing::ScratchDir;

using Blocks = std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>;

// A tensor saved in `dtype`: `values` (fp32, row-major over the whole tensor) are converted to
// dtype before the save, as a caller holding bf16 weights would have them; `blocks` (offset,
// count) are its slices.
struct TypedTensor {
  std::string role, name;
  std::vector<int64_t> shape;
  DType dtype;
  std::vector<float> values;
  Blocks blocks;
};

// Even positions: multiples of 1/4 below 8, exact in every dtype. Odd positions: 1/(i+2) with
// i+2 odd, which neither bf16 nor f16 can represent, so reads show the rounding.
std::vector<float> mixed_values(int64_t n) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i)
    v.push_back(i % 2 == 0 ? 0.25f * static_cast<float>(i) - 2.0f
                           : 1.0f / static_cast<float>(i + 2));
  return v;
}

// `values` as a reader returns them from `dtype`: rounded to it (ties to even) and widened.
std::vector<float> as_stored(const std::vector<float>& values, DType dtype) {
  std::vector<uint8_t> stored(values.size() * dtype_size(dtype));
  std::vector<float> out(values.size());
  convert_from_float(values.data(), dtype, stored.data(), values.size());
  convert_to_float(dtype, stored.data(), out.data(), values.size());
  return out;
}

// The cut of `shape` into `parts` equal pieces along `dim`.
Blocks split(const std::vector<int64_t>& shape, int dim, int parts) {
  Blocks out;
  for (int p = 0; p < parts; ++p) {
    std::vector<int64_t> offset(shape.size(), 0), count = shape;
    count[dim] = shape[dim] / parts;
    offset[dim] = p * count[dim];
    out.push_back({offset, count});
  }
  return out;
}

std::vector<TypedTensor> mixed_model() {
  return {
      {kRoleParam, "w32", {4, 6}, DType::F32, mixed_values(24), split({4, 6}, 0, 2)},
      {kRoleParam, "wte", {6, 4}, DType::BF16, mixed_values(24), split({6, 4}, 0, 3)},
      {kRoleExpAvg, "wte", {6, 4}, DType::F16, mixed_values(24), split({6, 4}, 1, 2)},
      {kRoleParam, "ln.bias", {5}, DType::F16, mixed_values(5), split({5}, 0, 1)},
  };
}

// Saves every block of every tensor from this one rank, in the tensor's dtype.
fs::path save_typed(const fs::path& root, int64_t step, const std::vector<TypedTensor>& tensors) {
  SelfCommunicator world("world");
  std::vector<std::vector<uint8_t>> storage;
  std::vector<CheckpointSlice> slices;
  for (const auto& t : tensors)
    for (const auto& [offset, count] : t.blocks) {
      const Rect whole{std::vector<int64_t>(t.shape.size(), 0), t.shape}, block{offset, count};
      std::vector<float> values(static_cast<size_t>(block.numel()));
      copy_region(t.values.data(), whole, values.data(), block, block);
      storage.emplace_back(values.size() * dtype_size(t.dtype));
      convert_from_float(values.data(), t.dtype, storage.back().data(), values.size());
      slices.push_back({t.role, t.name, t.shape, offset, count, nullptr, t.dtype});
    }
  for (size_t i = 0; i < slices.size(); ++i) slices[i].data = storage[i].data();
  return save_checkpoint(world, root, step, slices, {});
}

std::vector<float> read_all(CheckpointReader& reader, const TypedTensor& t) {
  std::vector<float> out(t.values.size(), -1.0f);
  reader.read(t.role, t.name, std::vector<int64_t>(t.shape.size(), 0), t.shape, out.data());
  return out;
}

// Root or dataset attribute of a file, through the bare HDF5 API.
int64_t int_attr(const fs::path& file, const char* object, const char* name) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t o = H5Oopen(f, object, H5P_DEFAULT);
  const hid_t a = H5Aopen(o, name, H5P_DEFAULT);
  int64_t value = -1;
  H5Aread(a, H5T_NATIVE_INT64, &value);
  H5Aclose(a);
  H5Oclose(o);
  H5Fclose(f);
  return value;
}

TEST(CheckpointDTypes, SavesAndReadsF32Bf16F16Slices) {
  ScratchDir root;
  const auto tensors = mixed_model();
  CheckpointReader reader(save_typed(root.path(), 1, tensors));
  for (const auto& t : tensors) {
    SCOPED_TRACE(t.role + "/" + t.name + " " + dtype_name(t.dtype));
    const std::vector<float> got = read_all(reader, t);
    EXPECT_EQ(got, as_stored(t.values, t.dtype));
    for (size_t i = 0; i < got.size(); ++i) {
      if (i % 2 == 0 || t.dtype == DType::F32)
        EXPECT_EQ(got[i], t.values[i]) << i;  // representable: exact
      else
        EXPECT_NE(got[i], t.values[i]) << i;  // rounded, to the nearest (as_stored above)
    }
  }
  // A rectangle across all three bf16 row blocks and both f16 column blocks, read twice: the
  // first read streams and verifies the stored slices, the second reads only the pieces.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& t : {tensors[1], tensors[2]}) {
      std::vector<float> got(4 * 2);
      reader.read(t.role, t.name, {1, 1}, {4, 2}, got.data());
      const std::vector<float> stored = as_stored(t.values, t.dtype);
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 2; ++c)
          EXPECT_EQ(got[static_cast<size_t>(r * 2 + c)],
                    stored[static_cast<size_t>((1 + r) * 4 + 1 + c)])
              << "pass " << pass << " " << t.role << " (" << r << ", " << c << ")";
    }
  }
}

TEST(CheckpointDTypes, ManifestAndRankFilesRecordAndNameEachDtype) {
  ScratchDir root;
  const auto tensors = mixed_model();
  const fs::path dir = save_typed(root.path(), 2, tensors);
  CheckpointReader reader(dir);
  EXPECT_EQ(reader.format_version(), kCheckpointFormatVersionDTypes);
  EXPECT_EQ(int_attr(dir / "rank_00000.h5", "/", "format_version"), kCheckpointFormatVersionDTypes);
  for (const StoredSlice& s : reader.slices())
    EXPECT_EQ(s.dtype, s.name == "w32"                           ? DType::F32
                       : s.role == kRoleParam && s.name == "wte" ? DType::BF16
                                                                 : DType::F16)
        << s.role << "/" << s.name;
  for (const StoredTensor& t : reader.tensors()) {
    for (const auto& want : tensors)
      if (want.role == t.role && want.name == t.name) EXPECT_EQ(t.dtype, want.dtype) << t.name;
  }
  // The dataset's own type says it too: a 2-byte float with bf16's fields.
  const hid_t f = H5Fopen((dir / "rank_00000.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "/param/wte", H5P_DEFAULT);
  const hid_t type = H5Dget_type(d);
  EXPECT_EQ(H5Tget_class(type), H5T_FLOAT);
  EXPECT_EQ(H5Tget_size(type), 2u);
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
  EXPECT_EQ(std::vector<size_t>({spos, epos, esize, mpos, msize}),
            std::vector<size_t>({15, 7, 8, 0, 7}));
  EXPECT_EQ(H5Tget_ebias(type), 127u);
  H5Tclose(type);
  H5Dclose(d);
  H5Fclose(f);

  const VerifyReport report = verify_checkpoint(dir);
  EXPECT_EQ(report.tensors, 4);
  EXPECT_EQ(report.bytes, 24 * 4 + 24 * 2 + 24 * 2 + 5 * 2);  // stored bytes, not fp32 ones
  const std::string text = describe_checkpoint(dir);
  EXPECT_NE(text.find("version 2"), std::string::npos) << text;
  for (const auto& [label, dtype] : std::vector<std::pair<std::string, std::string>>{
           {"param/w32", "f32"}, {"param/wte", "bf16"}, {"exp_avg/wte", "f16"}}) {
    const size_t at = text.find("  " + label + " ");
    ASSERT_NE(at, std::string::npos) << label << "\n" << text;
    const std::string line = text.substr(at, text.find('\n', at) - at);
    EXPECT_NE(line.find(" " + dtype + " "), std::string::npos) << line;
  }
}

TEST(CheckpointDTypes, Fp32CheckpointsStayVersion1) {
  ScratchDir root;
  const fs::path dir =
      save_typed(root.path(), 3,
                 {{kRoleParam, "w", {4, 6}, DType::F32, mixed_values(24), split({4, 6}, 1, 3)}});
  EXPECT_EQ(CheckpointReader(dir).format_version(), kCheckpointFormatVersion);
  EXPECT_EQ(int_attr(dir / "manifest.h5", "/", "format_version"), 1);
  EXPECT_EQ(int_attr(dir / "rank_00000.h5", "/", "format_version"), 1);
}

TEST(CheckpointDTypes, ManifestsWithoutDtypesReadAsF32) {
  // Saved by main at e9a1530, before dtypes: no slices/dtype column, no dtype attributes.
  const fs::path dir =
      fs::path(SHARDLM_TEST_DATA_DIR) / "fixtures" / "checkpoint_v1_main_e9a1530" / "step_00000003";
  CheckpointReader reader(dir);
  EXPECT_EQ(reader.format_version(), 1);
  ASSERT_FALSE(reader.slices().empty());
  for (const StoredSlice& s : reader.slices()) EXPECT_EQ(s.dtype, DType::F32) << s.name;
  EXPECT_EQ(verify_checkpoint(dir).tensors, static_cast<int64_t>(reader.tensors().size()));
  EXPECT_NE(describe_checkpoint(dir).find(" f32 "), std::string::npos);
}

TEST(CheckpointDTypes, Version1ManifestNamingBf16IsRefused) {
  // A bf16 checkpoint relabelled version 1: its dtype column is not what version 1 allows.
  ScratchDir root;
  const fs::path dir = save_typed(root.path(), 4, mixed_model());
  drop_whole_file_checksums(dir);  // the check behind the whole-file checksum
  const fs::path manifest = dir / "manifest.h5";
  const hid_t f = H5Fopen(manifest.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
  const int64_t version = 1;
  H5Awrite(a, H5T_NATIVE_INT64, &version);
  H5Aclose(a);
  H5Fclose(f);
  expect_error([&] { CheckpointReader reader(dir); },
               {manifest.string(), "slices/dtype", "'bf16'", "format_version 1"});
}

TEST(CheckpointDTypes, ConsolidateKeepsEachDtype) {
  ScratchDir root;
  const auto tensors = mixed_model();
  const fs::path dir = save_typed(root.path(), 5, tensors);
  const fs::path out = root.path() / "full.h5";
  consolidate_checkpoint(dir, out);
  EXPECT_EQ(int_attr(out, "/", "format_version"), kCheckpointFormatVersionDTypes);
  const hid_t f = H5Fopen(out.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const auto& t : tensors) {
    const std::string path = "/" + t.role + "/" + t.name;
    SCOPED_TRACE(path);
    const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
    ASSERT_GE(d, 0);
    const hid_t type = H5Dget_type(d);
    EXPECT_EQ(H5Tget_size(type), dtype_size(t.dtype));
    // The stored bits, read in the file's own type: the values rounded to the dtype.
    std::vector<uint8_t> bits(t.values.size() * dtype_size(t.dtype));
    ASSERT_GE(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits.data()), 0);
    std::vector<float> values(t.values.size());
    convert_to_float(t.dtype, bits.data(), values.data(), values.size());
    EXPECT_EQ(values, as_stored(t.values, t.dtype));
    uint32_t checksum = 0;
    const hid_t crc = H5Aopen(d, "checksum", H5P_DEFAULT);
    H5Aread(crc, H5T_NATIVE_UINT32, &checksum);
    EXPECT_EQ(checksum, crc32c(bits.data(), bits.size()));
    H5Aclose(crc);
    H5Tclose(type);
    H5Dclose(d);
  }
  H5Fclose(f);
}

TEST(CheckpointDTypes, CorruptedBf16DataIsRefusedNamingFileAndTensor) {
  ScratchDir root;
  const auto tensors = mixed_model();
  const fs::path dir = save_typed(root.path(), 6, tensors);
  drop_whole_file_checksums(dir);  // the check behind the whole-file checksum
  const fs::path file = dir / "rank_00000.h5";
  flip_byte(file, data_offset(file, "/param/wte@1") + 3);  // the second of three row blocks

  CheckpointReader reader(dir);
  expect_error([&] { read_all(reader, tensors[1]); },
               {"rank_00000.h5", "param/wte", "dataset /param/wte@1", "checksum mismatch"});
  EXPECT_EQ(read_all(reader, tensors[2]), as_stored(tensors[2].values, DType::F16));
  expect_error([&] { verify_checkpoint(dir); },
               {"1 problem", "rank_00000.h5: tensor param/wte (dataset /param/wte@1): checksum"});
}

TEST(CheckpointDTypes, SaveRefusesUnstorableAndInconsistentDtypes) {
  ScratchDir root;
  SelfCommunicator world("world");
  const std::vector<int32_t> ints(4, 1);
  const std::vector<float> floats(4, 1.0f);
  expect_error(
      [&] {
        save_checkpoint(world, root.path(), 1,
                        {{kRoleParam, "ids", {4}, {0}, {4}, ints.data(), DType::I32}}, {});
      },
      {"param/ids", "dtype i32 cannot be stored"});
  // Two slices of one tensor in different dtypes.
  expect_error(
      [&] {
        save_checkpoint(world, root.path(), 1,
                        {{kRoleParam, "w", {4}, {0}, {2}, floats.data(), DType::F32},
                         {kRoleParam, "w", {4}, {2}, {2}, floats.data(), DType::BF16}},
                        {});
      },
      {"param/w", "dtype bf16 differs from f32"});
  EXPECT_EQ(find_latest_checkpoint(root.path()), std::nullopt);
}

TEST(CheckpointDTypes, H5pyReadsTheDocumentedWay) {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with h5py and numpy (Debian: python3-h5py)";
  ScratchDir root;
  // /param/wte is one bf16 slice (the docs' raw-bits snippet decodes it whole).
  std::vector<TypedTensor> tensors = mixed_model();
  tensors[1].blocks = split(tensors[1].shape, 0, 1);
  const fs::path dir = save_typed(root.path(), 7, tensors);
  const fs::path expected = root.path() / "expected.txt";
  {
    std::ofstream out(expected);
    for (const auto& t : tensors) {
      out << t.role << " " << t.name << " " << dtype_name(t.dtype);
      for (float v : as_stored(t.values, t.dtype)) {
        char hex[32];
        std::snprintf(hex, sizeof hex, " %a", static_cast<double>(v));
        out << hex;
      }
      out << "\n";
    }
  }
  const std::string command = std::string("/usr/bin/python3 ") + SHARDLM_TEST_DATA_DIR +
                              "/unit/checkpoint_h5py_dtypes.py " + SHARDLM_REPO_DIR +
                              "/docs/checkpoint-format.md " + dir.string() + " " +
                              expected.string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) output += buf;
  EXPECT_EQ(::pclose(pipe), 0) << command << "\n" << output;
  EXPECT_EQ(output, "ok\n") << command;
}

}  // namespace
}  // namespace shardlm
