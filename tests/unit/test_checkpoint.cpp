// Sharded checkpoints in one process (SelfCommunicator): round trip, resharding reads across
// stored blocks, corruption/truncation refused with file and tensor named, atomic commit under
// kill -9, `latest`, retention, consolidation.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/manifest.h"
#include "checkpoint/rect.h"
#include "checkpoint_test_support.h"
#include "core/checksum.h"
#include "core/error.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using testing::data_offset;
using testing::drop_whole_file_checksums;
using testing::error_of;
using testing::flip_byte;
using testing::make_block;
using testing::make_tensor;
using testing::ScratchDir;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A tensor to save: its data and how it is cut into stored rectangles.
struct Tensor {
  std::string role, name;
  std::vector<int64_t> shape;
  int seed;
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> blocks;  // (offset, count)
};

// The blocks of `shape` cut into `parts` equal pieces along `dim`.
std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> split(
    const std::vector<int64_t>& shape, int dim, int parts) {
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> out;
  for (int p = 0; p < parts; ++p) {
    std::vector<int64_t> offset(shape.size(), 0), count = shape;
    count[dim] = shape[dim] / parts;
    offset[dim] = p * count[dim];
    out.push_back({offset, count});
  }
  return out;
}

// Saves every block of every tensor from this one rank. Block data lives in `storage`.
fs::path save_tensors(const fs::path& root, int64_t step, const std::vector<Tensor>& tensors,
                      const CheckpointInfo& info = {}) {
  SelfCommunicator world("world");
  std::vector<std::vector<float>> storage;
  std::vector<CheckpointSlice> slices;
  for (const auto& t : tensors)
    for (const auto& [offset, count] : t.blocks) {
      storage.push_back(make_block(t.seed, t.shape, offset, count));
      slices.push_back({t.role, t.name, t.shape, offset, count, nullptr});
    }
  for (size_t i = 0; i < slices.size(); ++i) slices[i].data = storage[i].data();
  return save_checkpoint(world, root, step, slices, info);
}

std::vector<Tensor> small_model(int seed = 1) {
  return {
      {kRoleParam, "wte", {12, 10}, seed, split({12, 10}, 0, 4)},
      {kRoleParam, "h.0.attn.c_proj.weight", {10, 10}, seed + 1, split({10, 10}, 1, 2)},
      {kRoleParam, "h.0.attn.c_attn.weight", {3, 4, 2, 6}, seed + 2, split({3, 4, 2, 6}, 1, 2)},
      {kRoleParam, "ln_f.bias", {10}, seed + 3, split({10}, 0, 1)},
      {kRoleExpAvg, "wte", {12, 10}, seed + 4, split({12, 10}, 1, 5)},
      {kRoleExpAvgSq, "wte", {12, 10}, seed + 5, split({12, 10}, 0, 3)},
  };
}

std::vector<float> read_rect(CheckpointReader& reader, const std::string& role,
                             const std::string& name, const std::vector<int64_t>& offset,
                             const std::vector<int64_t>& count) {
  int64_t n = 1;
  for (int64_t c : count) n *= c;
  std::vector<float> out(static_cast<size_t>(n), -1.0f);
  reader.read(role, name, offset, count, out.data());
  return out;
}

// ---- checksum and rectangle geometry -------------------------------------------------------

TEST(Crc32c, KnownVectorStreamingAndPortablePathAgree) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);  // the standard CRC-32C check value
  EXPECT_EQ(crc32c_update_portable(0, check.data(), check.size()), 0xE3069283u);
  std::mt19937 rng(7);
  std::vector<uint8_t> bytes(1000);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  for (size_t n : {0, 1, 7, 8, 9, 63, 64, 999, 1000}) {
    const uint32_t whole = crc32c(bytes.data(), n);
    EXPECT_EQ(crc32c_update_portable(0, bytes.data(), n), whole) << n;
    const size_t cut = n / 3;
    EXPECT_EQ(crc32c_update(crc32c(bytes.data(), cut), bytes.data() + cut, n - cut), whole) << n;
  }
}

TEST(Rect, SubtractLeavesExactlyTheDifference) {
  std::mt19937 rng(3);
  auto random_rect = [&] {
    Rect r;
    for (int d = 0; d < 3; ++d) {
      const int64_t lo = rng() % 6;
      r.offset.push_back(lo);
      r.count.push_back(1 + static_cast<int64_t>(rng() % (7 - lo)));
    }
    return r;
  };
  auto inside = [](const Rect& r, int x, int y, int z) {
    const int p[3] = {x, y, z};
    for (int d = 0; d < 3; ++d)
      if (p[d] < r.offset[d] || p[d] >= r.offset[d] + r.count[d]) return false;
    return true;
  };
  for (int trial = 0; trial < 200; ++trial) {
    const Rect a = random_rect(), b = random_rect();
    const auto pieces = subtract(a, b);
    for (int x = 0; x < 7; ++x)
      for (int y = 0; y < 7; ++y)
        for (int z = 0; z < 7; ++z) {
          int covered = 0;
          for (const Rect& p : pieces) covered += inside(p, x, y, z);
          ASSERT_EQ(covered, inside(a, x, y, z) && !inside(b, x, y, z) ? 1 : 0)
              << "trial " << trial;
        }
  }
}

TEST(Rect, BlocksAreBoundedAndRowMajorContiguous) {
  const Rect whole{{2, 0, 1}, {5, 7, 3}};
  for (int64_t max_elements : {1, 2, 4, 21, 22, 104, 105, 1000}) {
    int64_t expected_start = 0;
    for_each_block(whole, max_elements, [&](const Rect& block) {
      EXPECT_LE(block.numel(), max_elements);
      // Flat position of the block's first element inside `whole`.
      int64_t start = 0;
      for (size_t d = 0; d < 3; ++d)
        start = start * whole.count[d] + block.offset[d] - whole.offset[d];
      EXPECT_EQ(start, expected_start) << "max " << max_elements;
      // Contiguous in row-major order: unit extent before some dimension s, full extent after it.
      size_t s = 0;
      while (s + 1 < 3 && block.count[s] == 1) ++s;
      for (size_t d = s + 1; d < 3; ++d)
        EXPECT_EQ(block.count[d], whole.count[d]) << "max " << max_elements;
      expected_start += block.numel();
    });
    EXPECT_EQ(expected_start, whole.numel());
  }
}

TEST(Rect, ContiguityAndFlatIndex) {
  const Rect outer{{2, 0, 0}, {4, 3, 5}};
  EXPECT_TRUE(contiguous_within(Rect{{3, 0, 0}, {2, 3, 5}}, outer));   // whole rows of dim 0
  EXPECT_TRUE(contiguous_within(Rect{{3, 1, 0}, {1, 2, 5}}, outer));   // part of one slab
  EXPECT_TRUE(contiguous_within(Rect{{3, 1, 2}, {1, 1, 3}}, outer));   // part of one row
  EXPECT_FALSE(contiguous_within(Rect{{3, 0, 0}, {2, 2, 5}}, outer));  // skips row 2 of each slab
  EXPECT_FALSE(contiguous_within(Rect{{3, 1, 0}, {1, 2, 4}}, outer));  // skips a column
  EXPECT_EQ(flat_index(outer, {2, 0, 0}), 0);
  EXPECT_EQ(flat_index(outer, {3, 1, 2}), 15 + 5 + 2);
}

TEST(Rect, CopyRegionMovesTheRightElements) {
  const std::vector<int64_t> shape{6, 5, 4};
  const Rect src{{1, 0, 1}, {4, 5, 3}}, dst{{2, 1, 0}, {4, 3, 4}};
  const Rect region = *intersect(src, dst);
  const auto src_data = make_block(2, shape, src.offset, src.count);
  std::vector<float> dst_data(static_cast<size_t>(dst.numel()), -1.0f);
  copy_region(src_data.data(), src, dst_data.data(), dst, region);
  const auto expected_full = make_block(2, shape, dst.offset, dst.count);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t g[3] = {dst.offset[0] + i, dst.offset[1] + j, dst.offset[2] + k};
        bool in_region = true;
        for (int d = 0; d < 3; ++d)
          in_region &= g[d] >= region.offset[d] && g[d] < region.offset[d] + region.count[d];
        const size_t at = static_cast<size_t>((i * 3 + j) * 4 + k);
        EXPECT_EQ(dst_data[at], in_region ? expected_full[at] : -1.0f);
      }
}

// ---- save and load -------------------------------------------------------------------------

TEST(Checkpoint, RoundTripKeepsTensorsAndMetadata) {
  ScratchDir root;
  CheckpointInfo info;
  info.config_text = "n_layer = 1\nn_embd = 10\n";
  info.tokenizer_model = {0, 1, 2, 255, 0, 7};
  info.metadata["optimizer_step"] = int64_t{100};
  info.metadata["samples_consumed"] = int64_t{12800};
  info.metadata["lr"] = 3.0e-4;
  info.metadata["layout"] = std::string("tp=1 pp=1 dp=1 zero=0");
  info.metadata["data_rng"] = std::vector<uint8_t>{9, 0, 8, 0, 7};
  info.rank_metadata["rng_state"] = std::vector<uint8_t>{1, 2, 3, 0, 4};
  const auto tensors = small_model();
  const fs::path dir = save_tensors(root.path(), 100, tensors, info);

  EXPECT_EQ(dir, root.path() / "step_00000100");
  EXPECT_EQ(read_text(root.path() / "latest"), "step_00000100\n");
  EXPECT_EQ(find_latest_checkpoint(root.path()), dir);
  EXPECT_FALSE(fs::exists(root.path() / "step_00000100.tmp"));
  EXPECT_TRUE(fs::is_regular_file(dir / "manifest.h5"));
  EXPECT_TRUE(fs::is_regular_file(dir / "rank_00000.h5"));

  CheckpointReader reader(dir);
  EXPECT_EQ(reader.step(), 100);
  EXPECT_EQ(reader.format_version(), kCheckpointFormatVersion);
  EXPECT_EQ(reader.world_size(), 1);
  EXPECT_EQ(reader.config_text(), info.config_text);
  EXPECT_EQ(reader.tokenizer_model(), info.tokenizer_model);
  EXPECT_EQ(reader.metadata(), info.metadata);
  EXPECT_EQ(reader.metadata_int("optimizer_step"), 100);
  EXPECT_EQ(reader.metadata_double("lr"), 3.0e-4);
  EXPECT_EQ(reader.metadata_string("layout"), "tp=1 pp=1 dp=1 zero=0");
  EXPECT_EQ(reader.metadata_bytes("data_rng"), (std::vector<uint8_t>{9, 0, 8, 0, 7}));
  EXPECT_NE(error_of([&] { reader.metadata_int("lr"); }).find("'lr' is not an int64"),
            std::string::npos);
  EXPECT_NE(error_of([&] { reader.metadata_int("nope"); }).find("no metadata entry 'nope'"),
            std::string::npos);
  EXPECT_EQ(reader.rank_metadata(0), info.rank_metadata);
  EXPECT_EQ(reader.tensors().size(), tensors.size());
  for (const auto& t : tensors) {
    ASSERT_TRUE(reader.has_tensor(t.role, t.name));
    EXPECT_EQ(reader.global_shape(t.role, t.name), t.shape);
    EXPECT_EQ(read_rect(reader, t.role, t.name, std::vector<int64_t>(t.shape.size(), 0), t.shape),
              make_tensor(t.seed, t.shape))
        << t.role << "/" << t.name;
  }
  EXPECT_NE(error_of([&] {
              reader.global_shape(kRoleParam, "missing");
            }).find("holds no tensor param/missing"),
            std::string::npos);

  const VerifyReport report = verify_checkpoint(dir);
  EXPECT_EQ(report.files, 1);
  EXPECT_EQ(report.tensors, static_cast<int64_t>(tensors.size()));
  EXPECT_EQ(report.slices, 4 + 2 + 2 + 1 + 5 + 3);
}

TEST(Checkpoint, RankFileIsPlainHdf5WithSelfDescribingDatasets) {
  ScratchDir root;
  const fs::path dir = save_tensors(root.path(), 5, small_model());
  // Read with the bare HDF5 API: /param/wte is the first row block, /param/wte@1 the second.
  const hid_t f = H5Fopen((dir / "rank_00000.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t d = H5Dopen2(f, "/param/wte@1", H5P_DEFAULT);
  ASSERT_GE(d, 0);
  std::vector<float> data(30);
  ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
  EXPECT_EQ(data, make_block(1, {12, 10}, {3, 0}, {3, 10}));
  int64_t offset[2] = {-1, -1}, global_shape[2] = {-1, -1};
  const hid_t a_off = H5Aopen(d, "offset", H5P_DEFAULT),
              a_shape = H5Aopen(d, "global_shape", H5P_DEFAULT);
  H5Aread(a_off, H5T_NATIVE_INT64, offset);
  H5Aread(a_shape, H5T_NATIVE_INT64, global_shape);
  EXPECT_EQ(offset[0], 3);
  EXPECT_EQ(offset[1], 0);
  EXPECT_EQ(global_shape[0], 12);
  EXPECT_EQ(global_shape[1], 10);
  uint32_t checksum = 0;
  const hid_t a_crc = H5Aopen(d, "checksum", H5P_DEFAULT);
  H5Aread(a_crc, H5T_NATIVE_UINT32, &checksum);
  EXPECT_EQ(checksum, crc32c(data.data(), data.size() * sizeof(float)));
  H5Aclose(a_crc);
  H5Aclose(a_off);
  H5Aclose(a_shape);
  H5Dclose(d);
  H5Fclose(f);
}

TEST(Checkpoint, ReadsAnyRectangleAcrossStoredBlocks) {
  ScratchDir root;
  const auto tensors = small_model();
  CheckpointReader reader(save_tensors(root.path(), 1, tensors));
  // wte stored as 4 row blocks: read it back as column blocks, as a 2x2 grid, and as rectangles
  // straddling several stored blocks.
  const std::vector<int64_t> wte{12, 10};
  for (const auto& [offset, count] : split(wte, 1, 2))
    EXPECT_EQ(read_rect(reader, kRoleParam, "wte", offset, count),
              make_block(1, wte, offset, count));
  for (int64_t r : {0, 6})
    for (int64_t c : {0, 5})
      EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {r, c}, {6, 5}),
                make_block(1, wte, {r, c}, {6, 5}));
  EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {2, 3}, {7, 5}),
            make_block(1, wte, {2, 3}, {7, 5}));
  EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {11, 9}, {1, 1}),
            make_block(1, wte, {11, 9}, {1, 1}));
  // exp_avg of wte stored as 5 column blocks, read as 3 row blocks.
  for (const auto& [offset, count] : split(wte, 0, 3))
    EXPECT_EQ(read_rect(reader, kRoleExpAvg, "wte", offset, count),
              make_block(5, wte, offset, count));
  // The 4-D attention weight stored as 2 head blocks, read as the 3 q/k/v blocks and a
  // rectangle cutting every dimension.
  const std::vector<int64_t> qkv{3, 4, 2, 6};
  for (const auto& [offset, count] : split(qkv, 0, 3))
    EXPECT_EQ(read_rect(reader, kRoleParam, "h.0.attn.c_attn.weight", offset, count),
              make_block(3, qkv, offset, count));
  EXPECT_EQ(read_rect(reader, kRoleParam, "h.0.attn.c_attn.weight", {1, 1, 0, 2}, {2, 2, 2, 3}),
            make_block(3, qkv, {1, 1, 0, 2}, {2, 2, 2, 3}));
  // Requests outside the tensor are refused.
  EXPECT_NE(error_of([&] {
              read_rect(reader, kRoleParam, "wte", {10, 0}, {3, 10});
            }).find("does not fit in [12, 10]"),
            std::string::npos);
}

TEST(Checkpoint, StreamsTensorsLargerThanTheBlockBuffer) {
  // 2.1M and 2.5M elements: more than one 1M-element streaming block per stored rectangle.
  ScratchDir root;
  const std::vector<int64_t> matrix{2100, 1000}, vector{2500000};
  const std::vector<Tensor> tensors{{kRoleParam, "big", matrix, 1, split(matrix, 0, 2)},
                                    {kRoleParam, "long", vector, 2, split(vector, 0, 1)}};
  const fs::path dir = save_tensors(root.path(), 3, tensors);
  CheckpointReader reader(dir);
  for (const auto& [offset, count] : split(matrix, 1, 4))
    EXPECT_EQ(read_rect(reader, kRoleParam, "big", offset, count),
              make_block(1, matrix, offset, count));
  EXPECT_EQ(read_rect(reader, kRoleParam, "long", {1234567}, {1000000}),
            make_block(2, vector, {1234567}, {1000000}));
  EXPECT_EQ(verify_checkpoint(dir).bytes, (2100 * 1000 + 2500000) * 4);
}

// Slices whose elements come from a source (an import streaming another file): asked for in
// order, a block at a time, and stored exactly as slices from memory would be.
TEST(Checkpoint, SourcedSlicesAreFilledBlockByBlockInOrder) {
  ScratchDir root;
  const std::vector<int64_t> shape{2100, 1000};
  const auto blocks = split(shape, 0, 2);
  std::vector<SourcedSlice> slices;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> asked(blocks.size());
  for (size_t b = 0; b < blocks.size(); ++b) {
    const auto& [offset, count] = blocks[b];
    const auto values = std::make_shared<std::vector<float>>(make_block(7, shape, offset, count));
    slices.push_back({{kRoleParam, "big", shape, offset, count, nullptr, DType::F32},
                      [values, &asked, b](int64_t first, int64_t n, void* out) {
                        asked[b].emplace_back(first, n);
                        std::copy_n(values->data() + first, n, static_cast<float*>(out));
                      }});
  }
  SelfCommunicator world("world");
  const fs::path dir = save_sourced_checkpoint(world, root.path(), 1, slices, CheckpointInfo{});
  CheckpointReader reader(dir);
  EXPECT_EQ(read_rect(reader, kRoleParam, "big", {0, 0}, shape),
            make_block(7, shape, {0, 0}, shape));
  for (const auto& calls : asked) {
    int64_t next = 0;
    for (const auto& [first, n] : calls) {
      EXPECT_EQ(first, next);
      EXPECT_LE(n, int64_t{1} << 20);
      next = first + n;
    }
    EXPECT_EQ(next, 1050 * 1000);
    EXPECT_GT(calls.size(), 1u);
  }
  // A slice with neither data nor a source is refused.
  slices[1].source = nullptr;
  EXPECT_NE(error_of([&] {
              save_sourced_checkpoint(world, root.path(), 2, slices, CheckpointInfo{});
            }).find("data is null"),
            std::string::npos);
}

TEST(Checkpoint, OverlappingRectanglesReadFromTheFirst) {
  ScratchDir root;
  const std::vector<int64_t> shape{8, 4};
  // Rows 0-5 from seed 1, rows 3-7 from seed 2: rows 3-5 are stored twice, differently.
  const std::vector<Tensor> tensors{{kRoleParam, "ln", shape, 1, {{{0, 0}, {6, 4}}}},
                                    {kRoleParam, "ln", shape, 2, {{{3, 0}, {5, 4}}}}};
  CheckpointReader reader(save_tensors(root.path(), 1, tensors));
  auto expected = make_block(1, shape, {0, 0}, {6, 4});
  const auto tail = make_block(2, shape, {6, 0}, {2, 4});
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(read_rect(reader, kRoleParam, "ln", {0, 0}, shape), expected);
}

TEST(Checkpoint, SaveRefusesBadSlicesAndKeepsThePreviousCheckpoint) {
  ScratchDir root;
  const fs::path previous = save_tensors(root.path(), 1, small_model());
  const std::vector<int64_t> shape{4, 4};
  auto refused = [&](const Tensor& t) {
    return error_of([&] { save_tensors(root.path(), 2, {t}); });
  };
  EXPECT_NE(
      refused({kRoleParam, "w", shape, 1, {{{0, 0}, {2, 4}}}}).find("is stored in no rank file"),
      std::string::npos);
  EXPECT_NE(refused({"momentum", "w", shape, 1, {{{0, 0}, shape}}}).find("role must be"),
            std::string::npos);
  EXPECT_NE(refused({kRoleParam, "a/b", shape, 1, {{{0, 0}, shape}}}).find("no '/' or '@'"),
            std::string::npos);
  EXPECT_NE(refused({kRoleParam, "w", shape, 1, {{{1, 0}, shape}}}).find("does not fit"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(root.path() / "step_00000002"));
  EXPECT_EQ(find_latest_checkpoint(root.path()), previous);
  EXPECT_NO_THROW(verify_checkpoint(previous));
}

TEST(Checkpoint, SavingTheSameStepAgainReplacesIt) {
  ScratchDir root;
  save_tensors(root.path(), 7, small_model(1));
  const fs::path dir = save_tensors(root.path(), 7, small_model(3));
  CheckpointReader reader(dir);
  EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {0, 0}, {12, 10}), make_tensor(3, {12, 10}));
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{7});
  EXPECT_EQ(std::distance(fs::directory_iterator(root.path()), fs::directory_iterator()),
            2);  // step + latest
}

// ---- damaged checkpoints -------------------------------------------------------------------

TEST(Checkpoint, CorruptedDataIsRefusedNamingFileAndTensor) {
  ScratchDir root;
  const fs::path dir = save_tensors(root.path(), 1, small_model());
  const fs::path file = dir / "rank_00000.h5";
  // Flip one byte in the middle of ln_f.bias's data (10 floats).
  flip_byte(file, data_offset(file, "/param/ln_f.bias") + 17);
  // The whole-file checksum refuses the file before HDF5 reads it.
  std::string guard = error_of([&] {
    CheckpointReader reader(dir);
    read_rect(reader, kRoleParam, "wte", {0, 0}, {12, 10});
  });
  EXPECT_NE(guard.find("rank_00000.h5: whole-file CRC32C is"), std::string::npos) << guard;
  guard = error_of([&] { verify_checkpoint(dir); });
  EXPECT_NE(guard.find("rank_00000.h5: whole-file CRC32C is"), std::string::npos) << guard;

  // Without it (a checkpoint from before whole-file checksums), the tensor's own checksum.
  drop_whole_file_checksums(dir);
  CheckpointReader reader(dir);  // sizes and manifest are intact
  const std::string message =
      error_of([&] { read_rect(reader, kRoleParam, "ln_f.bias", {0}, {10}); });
  EXPECT_NE(message.find("rank_00000.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("param/ln_f.bias"), std::string::npos) << message;
  EXPECT_NE(message.find("checksum mismatch"), std::string::npos) << message;
  // Other tensors still load.
  EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {0, 0}, {12, 10}), make_tensor(1, {12, 10}));

  const std::string verify = error_of([&] { verify_checkpoint(dir); });
  EXPECT_NE(verify.find("1 problem"), std::string::npos) << verify;
  EXPECT_NE(verify.find("rank_00000.h5: tensor param/ln_f.bias: checksum mismatch"),
            std::string::npos)
      << verify;
}

TEST(Checkpoint, TruncatedRankFileIsRefusedNamingFileAndTensor) {
  ScratchDir root;
  const fs::path dir = save_tensors(root.path(), 1, small_model());
  const fs::path file = dir / "rank_00000.h5";
  fs::resize_file(file, fs::file_size(file) / 2);
  const std::string message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("rank_00000.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("param/wte"), std::string::npos) << message;
  const std::string verify = error_of([&] { verify_checkpoint(dir); });
  EXPECT_NE(verify.find("rank_00000.h5: file is"), std::string::npos) << verify;
  EXPECT_NE(verify.find("param/wte"), std::string::npos) << verify;
}

TEST(Checkpoint, MissingRankFileIsRefused) {
  ScratchDir root;
  const fs::path dir = save_tensors(root.path(), 1, small_model());
  fs::remove(dir / "rank_00000.h5");
  const std::string message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("rank_00000.h5: rank file is missing"), std::string::npos) << message;
}

TEST(Checkpoint, MissingOrDamagedManifestIsRefused) {
  ScratchDir root;
  const fs::path older = save_tensors(root.path(), 1, small_model());
  const fs::path dir = save_tensors(root.path(), 2, small_model());
  const fs::path manifest = dir / "manifest.h5";
  const fs::path saved = root.path() / "manifest.backup";

  // Any changed byte fails the whole-file checksum in manifest.crc32c, before HDF5 opens it.
  flip_byte(manifest, fs::file_size(manifest) / 2);
  std::string message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("manifest.h5: whole-file CRC32C is"), std::string::npos) << message;
  EXPECT_NE(message.find("manifest.crc32c"), std::string::npos) << message;
  flip_byte(manifest, fs::file_size(manifest) / 2);
  std::ofstream(dir / kManifestSidecarName, std::ios::trunc) << "crc32c 12 bytes x\n";
  message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("manifest.crc32c is not a manifest checksum file"), std::string::npos)
      << message;

  // The checks behind it, as for a checkpoint from before whole-file checksums.
  fs::remove(dir / kManifestSidecarName);
  fs::copy_file(manifest, saved);
  // Changed contents (a different step) fail the manifest checksum.
  {
    const hid_t f = H5Fopen(manifest.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t a = H5Aopen(f, "step", H5P_DEFAULT);
    const int64_t step = 3;
    H5Awrite(a, H5T_NATIVE_INT64, &step);
    H5Aclose(a);
    H5Fclose(f);
  }
  message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("manifest.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("manifest is corrupted"), std::string::npos) << message;

  // A format version this build does not know.
  fs::copy_file(saved, manifest, fs::copy_options::overwrite_existing);
  {
    const hid_t f = H5Fopen(manifest.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    const int64_t version = 99;
    H5Awrite(a, H5T_NATIVE_INT64, &version);
    H5Aclose(a);
    H5Fclose(f);
  }
  message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("format_version 99"), std::string::npos) << message;
  EXPECT_NE(message.find("manifest.h5"), std::string::npos) << message;

  // Garbage and absence.
  std::ofstream(manifest, std::ios::trunc) << "not hdf5";
  message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("manifest.h5 is unreadable"), std::string::npos) << message;
  fs::remove(manifest);
  message = error_of([&] { CheckpointReader reader(dir); });
  EXPECT_NE(message.find("manifest.h5 is missing"), std::string::npos) << message;
  // Without a manifest the directory is not a checkpoint: discovery falls back to step 1.
  EXPECT_EQ(find_latest_checkpoint(root.path()), older);
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{1});
}

TEST(Checkpoint, UncoveredElementsAreReported) {
  // A manifest that lists fewer rectangles than were saved (written with the internal API,
  // which the public save never produces): reads of the missing rows fail, others work.
  ScratchDir root;
  const fs::path dir = save_tensors(root.path(), 1, small_model());
  Manifest manifest = read_manifest(dir / kManifestFileName);
  const auto dropped =
      std::find_if(manifest.slices.begin(), manifest.slices.end(), [](const StoredSlice& s) {
        return s.role == kRoleParam && s.name == "wte" && s.offset[0] == 6;
      });
  ASSERT_NE(dropped, manifest.slices.end());
  manifest.slices.erase(dropped);
  write_manifest(dir / kManifestFileName, manifest);
  write_manifest_sidecar(dir / kManifestFileName);

  CheckpointReader reader(dir);
  EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {0, 0}, {6, 10}),
            make_block(1, {12, 10}, {0, 0}, {6, 10}));
  const std::string message = error_of([&] {
    read_rect(reader, kRoleParam, "wte", {4, 0}, {4, 10});
  });
  EXPECT_NE(message.find("tensor param/wte"), std::string::npos) << message;
  EXPECT_NE(message.find("the rectangle at [6, 0] of extent [2, 10] is stored in no rank file"),
            std::string::npos)
      << message;
  const std::string verify = error_of([&] { verify_checkpoint(dir); });
  EXPECT_NE(verify.find("tensor param/wte [12, 10]: the rectangle at [6, 0]"), std::string::npos)
      << verify;
}

// ---- commit, discovery, retention ----------------------------------------------------------

TEST(Checkpoint, LeftoversOfAnInterruptedSaveAreIgnoredThenCleanedUp) {
  ScratchDir root;
  const fs::path good = save_tensors(root.path(), 10, small_model(1));
  // What a crash during the save of step 20 leaves: a tmp dir with a partial rank file (and,
  // had rank 0 got as far, a manifest — still only inside the .tmp dir), a half-written
  // latest.tmp.
  fs::create_directory(root.path() / "step_00000020.tmp");
  std::ofstream(root.path() / "step_00000020.tmp" / "rank_00000.h5") << "\x89HDF\r\n partial";
  fs::copy_file(good / "manifest.h5", root.path() / "step_00000020.tmp" / "manifest.h5");
  std::ofstream(root.path() / "latest.tmp") << "step_000";
  // A step directory whose manifest never arrived (e.g. a copy interrupted by hand).
  fs::create_directory(root.path() / "step_00000030");

  EXPECT_EQ(find_latest_checkpoint(root.path()), good);
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{10});
  CheckpointReader reader(*find_latest_checkpoint(root.path()));
  EXPECT_EQ(read_rect(reader, kRoleParam, "wte", {0, 0}, {12, 10}), make_tensor(1, {12, 10}));

  const fs::path next = save_tensors(root.path(), 40, small_model(2));
  EXPECT_EQ(find_latest_checkpoint(root.path()), next);
  EXPECT_FALSE(fs::exists(root.path() / "step_00000020.tmp"));
  EXPECT_FALSE(fs::exists(root.path() / "latest.tmp"));
}

TEST(Checkpoint, LatestPointerWinsAndBrokenPointerFallsBack) {
  ScratchDir root;
  const fs::path first = save_tensors(root.path(), 1, small_model());
  const fs::path second = save_tensors(root.path(), 2, small_model());
  EXPECT_EQ(read_text(root.path() / "latest"), "step_00000002\n");
  // latest names the older one (a crash between the rename and the pointer update): it wins.
  std::ofstream(root.path() / "latest", std::ios::trunc) << "step_00000001\n";
  EXPECT_EQ(find_latest_checkpoint(root.path()), first);
  // Pointing nowhere, garbage, or missing: the newest committed directory.
  std::ofstream(root.path() / "latest", std::ios::trunc) << "step_00000009\n";
  EXPECT_EQ(find_latest_checkpoint(root.path()), second);
  std::ofstream(root.path() / "latest", std::ios::trunc) << "../../etc\n";
  EXPECT_EQ(find_latest_checkpoint(root.path()), second);
  fs::remove(root.path() / "latest");
  EXPECT_EQ(find_latest_checkpoint(root.path()), second);
  ScratchDir empty;
  EXPECT_EQ(find_latest_checkpoint(empty.path()), std::nullopt);
  EXPECT_EQ(find_latest_checkpoint(empty.path() / "does-not-exist"), std::nullopt);
}

// resolve_checkpoint: what --resume, `shardlm generate` and `shardlm ckpt` accept.
TEST(ResolveCheckpoint, CommittedDirRunDirAndRoot) {
  ScratchDir scratch;
  const fs::path run = scratch.path() / "run", root = run / "checkpoints";
  const fs::path older = save_tensors(root, 1, small_model());
  const fs::path newest = save_tensors(root, 2, small_model());
  EXPECT_EQ(resolve_checkpoint(older), older);  // a committed directory as is, even an old one
  EXPECT_EQ(resolve_checkpoint(run), newest);
  EXPECT_EQ(resolve_checkpoint(root), newest);
}

TEST(ResolveCheckpoint, LatestNamingADeletedDirFallsBackToTheNewest) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "checkpoints";
  const fs::path first = save_tensors(root, 1, small_model());
  const fs::path second = save_tensors(root, 2, small_model());
  fs::remove_all(second);  // `latest` still names step_00000002
  EXPECT_EQ(read_text(root / "latest"), "step_00000002\n");
  EXPECT_EQ(resolve_checkpoint(scratch.path()), first);
  EXPECT_EQ(resolve_checkpoint(root), first);
  fs::remove_all(first);  // and with nothing committed left, a refusal
  testing::expect_error([&] { resolve_checkpoint(root); }, {root.string(), "committed checkpoint"});
}

TEST(ResolveCheckpoint, UncommittedLeftoversAreNoCheckpoint) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "checkpoints";
  const fs::path saved = save_tensors(root, 3, small_model());
  // What an interrupted save leaves: only step_X.tmp, here with its manifest already written
  // (and a `latest` pointing to nothing).
  const fs::path tmp = root / "step_00000003.tmp";
  fs::rename(saved, tmp);
  for (const fs::path& p : {scratch.path(), root})
    testing::expect_error([&] { resolve_checkpoint(p); },
                          {p.string(), "no manifest.h5", "committed checkpoint"});
  testing::expect_error([&] { resolve_checkpoint(tmp); },
                        {tmp.string(), "not a committed checkpoint", "did not finish"});
}

TEST(ResolveCheckpoint, NothingThereIsRefusedNamingThePath) {
  ScratchDir scratch;
  testing::expect_error([&] { resolve_checkpoint(scratch.path()); },
                        {scratch.path().string(), "neither a checkpoint"});
  const fs::path missing = scratch.path() / "nope";
  testing::expect_error([&] { resolve_checkpoint(missing); }, {missing.string(), "does not exist"});
  std::ofstream(scratch.path() / "file.txt") << "x";
  testing::expect_error([&] { resolve_checkpoint(scratch.path() / "file.txt"); },
                        {"file.txt", "neither a checkpoint"});
}

TEST(Checkpoint, KillDuringSaveLeavesALoadableCheckpoint) {
  ScratchDir root;
  const std::vector<int64_t> shape{512, 1024};  // 2 MiB per tensor, 3 tensors per step
  auto model = [&](int seed) {
    return std::vector<Tensor>{{kRoleParam, "w", shape, seed, split(shape, 0, 2)},
                               {kRoleExpAvg, "w", shape, seed + 1, split(shape, 1, 2)},
                               {kRoleExpAvgSq, "w", shape, seed + 2, split(shape, 0, 4)}};
  };
  save_tensors(root.path(), 0, model(1));
  for (int delay_ms : {2, 9, 23, 41, 77}) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // Save forever (steps 1, 2, ... again each round, so re-saving a committed step is killed
      // too); the parent kills us at an arbitrary point. An error exits, which the parent sees.
      try {
        for (int64_t step = 1;; ++step)
          save_tensors(root.path(), step, model(1 + static_cast<int>(step % 5)));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "saving child failed: %s\n", e.what());
      }
      std::_Exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));

    const auto latest = find_latest_checkpoint(root.path());
    ASSERT_TRUE(latest.has_value());
    EXPECT_NO_THROW(verify_checkpoint(*latest))
        << "after a kill at " << delay_ms << " ms: " << *latest;
    CheckpointReader reader(*latest);
    const int seed = 1 + static_cast<int>(reader.step() % 5);
    EXPECT_EQ(read_rect(reader, kRoleExpAvg, "w", {0, 0}, shape), make_tensor(seed + 1, shape));
    for (const int64_t step : list_checkpoints(root.path()))
      EXPECT_NO_THROW(verify_checkpoint(root.path() / checkpoint_dir_name(step))) << step;
  }
}

TEST(Checkpoint, RetentionKeepsRecentMilestonesAndLatest) {
  ScratchDir root;
  for (int64_t step = 10; step <= 100; step += 10) save_tensors(root.path(), step, small_model());
  std::ofstream(root.path() / "latest", std::ios::trunc) << "step_00000020\n";
  const auto deleted = apply_retention(root.path(), 2, 50);
  std::vector<std::string> deleted_names;
  for (const auto& d : deleted) deleted_names.push_back(d.filename().string());
  EXPECT_EQ(deleted_names,
            (std::vector<std::string>{"step_00000010", "step_00000030", "step_00000040",
                                      "step_00000060", "step_00000070", "step_00000080"}));
  EXPECT_EQ(list_checkpoints(root.path()), (std::vector<int64_t>{20, 50, 90, 100}));
  EXPECT_FALSE(fs::exists(root.path() / "step_00000010"));
  EXPECT_FALSE(fs::exists(root.path() / "step_00000010.deleting.tmp"));
  // keep_every = 0 keeps no milestones; latest (now 100) is always kept.
  std::ofstream(root.path() / "latest", std::ios::trunc) << "step_00000100\n";
  apply_retention(root.path(), 1, 0);
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{100});
  apply_retention(root.path(), 0, 0);
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{100});
}

// ---- tools ---------------------------------------------------------------------------------

TEST(Checkpoint, ConsolidateWritesFullTensorsAndMetadata) {
  ScratchDir root;
  CheckpointInfo info;
  info.config_text = "n_layer = 1\n";
  info.metadata["optimizer_step"] = int64_t{42};
  const auto tensors = small_model();
  const fs::path dir = save_tensors(root.path(), 42, tensors, info);
  const fs::path out = root.path() / "full.h5";
  consolidate_checkpoint(dir, out);
  EXPECT_FALSE(fs::exists(root.path() / "full.h5.tmp"));

  const hid_t f = H5Fopen(out.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const auto& t : tensors) {
    const std::string path = "/" + t.role + "/" + t.name;
    const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
    ASSERT_GE(d, 0) << path;
    const auto expected = make_tensor(t.seed, t.shape);
    std::vector<float> data(expected.size());
    ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
    EXPECT_EQ(data, expected) << path;
    uint32_t checksum = 0;
    const hid_t a = H5Aopen(d, "checksum", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_UINT32, &checksum);
    EXPECT_EQ(checksum, crc32c(data.data(), data.size() * sizeof(float))) << path;
    H5Aclose(a);
    H5Dclose(d);
  }
  const hid_t step_attr = H5Aopen(f, "step", H5P_DEFAULT);
  int64_t step = 0;
  H5Aread(step_attr, H5T_NATIVE_INT64, &step);
  EXPECT_EQ(step, 42);
  H5Aclose(step_attr);
  const hid_t meta = H5Dopen2(f, "/metadata/optimizer_step", H5P_DEFAULT);
  int64_t optimizer_step = 0;
  H5Dread(meta, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &optimizer_step);
  EXPECT_EQ(optimizer_step, 42);
  H5Dclose(meta);
  H5Fclose(f);
}

TEST(Checkpoint, DescribeListsStepMetadataTensorsAndConfig) {
  ScratchDir root;
  CheckpointInfo info;
  info.config_text = "n_layer = 1\nn_embd = 10\n";
  info.metadata["layout.tp"] = int64_t{2};
  info.metadata["rng"] = std::vector<uint8_t>(16, 1);
  const fs::path dir = save_tensors(root.path(), 9, small_model(), info);
  const std::string text = describe_checkpoint(dir);
  EXPECT_NE(text.find("step        9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("layout.tp = 2"), std::string::npos) << text;
  EXPECT_NE(text.find("rng = <16 bytes>"), std::string::npos) << text;
  EXPECT_NE(text.find("param/h.0.attn.c_attn.weight"), std::string::npos) << text;
  EXPECT_NE(text.find("[3, 4, 2, 6]"), std::string::npos) << text;
  EXPECT_NE(text.find("  n_embd = 10\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace shardlm
