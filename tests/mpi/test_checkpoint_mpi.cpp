// Sharded checkpoints across 4 ranks: each rank writes its own rectangles of shared tensors into
// its own file; every rank then reads the whole tensors and a different partition back. A save
// that fails on one rank throws on every rank without hanging and keeps the previous checkpoint;
// the same for a save whose files are written on a background thread (BackgroundSave).
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../unit/checkpoint_test_support.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_save.h"
#include "checkpoint/manifest.h"
#include "core/error.h"
#include "parallel/mpi_comm.h"
#include "train/background_save.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using testing::make_block;
using testing::make_tensor;

// A directory every rank sees: rank 0 makes it, the path is broadcast, rank 0 removes it.
class SharedScratchDir {
 public:
  explicit SharedScratchDir(Communicator& world) : world_(world) {
    std::vector<char> path(4096, 0);
    if (world.rank() == 0) {
      std::string tmpl = (fs::temp_directory_path() / "shardlm-ckpt-mpi-XXXXXX").string();
      if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
      std::copy(tmpl.begin(), tmpl.end(), path.begin());
    }
    world.broadcast(path.data(), path.size(), DType::U8, 0);
    path_ = path.data();
  }
  ~SharedScratchDir() {
    world_.barrier();
    std::error_code ec;
    if (world_.rank() == 0) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  Communicator& world_;
  fs::path path_;
};

// The slices one rank owns, with the data they point to.
struct RankShards {
  std::vector<std::vector<float>> data;
  std::vector<CheckpointSlice> slices;
  void add(const std::string& role, const std::string& name, int seed,
           const std::vector<int64_t>& shape, const std::vector<int64_t>& offset,
           const std::vector<int64_t>& count) {
    data.push_back(make_block(seed, shape, offset, count));
    slices.push_back({role, name, shape, offset, count, nullptr});
    for (size_t i = 0; i < slices.size(); ++i) slices[i].data = data[i].data();
  }
};

const std::vector<int64_t> kGrid{8, 12};        // 2x2 grid of [4, 6] blocks over 4 ranks
const std::vector<int64_t> kRows{16, 5};        // 4 row blocks
const std::vector<int64_t> kHeads{3, 4, 2, 6};  // 4 blocks of one head each
const std::vector<int64_t> kNorm{12};           // replicated: rank 0's copy is the primary

// Rank r's share, as a TP x ZeRO layout would cut it (4 ranks).
RankShards shards_of(int r, int seed) {
  RankShards s;
  s.add(kRoleParam, "grid", seed, kGrid, {4 * (r / 2), 6 * (r % 2)}, {4, 6});
  s.add(kRoleParam, "rows", seed + 1, kRows, {4 * r, 0}, {4, 5});
  s.add(kRoleParam, "heads", seed + 2, kHeads, {0, r, 0, 0}, {3, 1, 2, 6});
  if (r == 0) s.add(kRoleParam, "norm", seed + 3, kNorm, {0}, kNorm);
  s.add(kRoleExpAvg, "grid", seed + 4, kGrid, {0, 3 * r}, {8, 3});
  s.add(kRoleExpAvgSq, "grid", seed + 5, kGrid, {2 * r, 0}, {2, 12});
  return s;
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

class CheckpointMpi : public ::testing::Test {
 protected:
  MpiCommunicator world{MPI_COMM_WORLD, "world"};
  const int r = world.rank();
};

TEST_F(CheckpointMpi, EveryRankWritesItsFileAndReadsAnyPartition) {
  ASSERT_EQ(world.size(), 4) << "run under mpirun -np 4";
  SharedScratchDir root(world);
  RankShards mine = shards_of(r, 1);
  CheckpointInfo info;
  info.config_text = "n_layer = 1\n";
  info.metadata["layout.tp"] = int64_t{2};
  info.rank_metadata["rng_state"] = std::vector<uint8_t>{static_cast<uint8_t>(r), 7};
  const fs::path dir = save_checkpoint(world, root.path(), 50, mine.slices, info);
  EXPECT_EQ(dir, root.path() / "step_00000050");
  EXPECT_TRUE(fs::is_regular_file(dir / rank_file_name(r)));
  EXPECT_EQ(find_latest_checkpoint(root.path()), dir);

  CheckpointReader reader(dir);
  EXPECT_EQ(reader.world_size(), 4);
  EXPECT_EQ(reader.metadata_int("layout.tp"), 2);
  for (int q = 0; q < 4; ++q)
    EXPECT_EQ(std::get<std::vector<uint8_t>>(reader.rank_metadata(q).at("rng_state")),
              (std::vector<uint8_t>{static_cast<uint8_t>(q), 7}));
  // Whole tensors, on every rank.
  const struct {
    const char* role;
    const char* name;
    int seed;
    std::vector<int64_t> shape;
  } whole[] = {{kRoleParam, "grid", 1, kGrid},   {kRoleParam, "rows", 2, kRows},
               {kRoleParam, "heads", 3, kHeads}, {kRoleParam, "norm", 4, kNorm},
               {kRoleExpAvg, "grid", 5, kGrid},  {kRoleExpAvgSq, "grid", 6, kGrid}};
  for (const auto& t : whole)
    EXPECT_EQ(read_rect(reader, t.role, t.name, std::vector<int64_t>(t.shape.size(), 0), t.shape),
              make_tensor(t.seed, t.shape))
        << t.role << "/" << t.name;
  // A different partition: rank r takes row block r of the grid (straddling two stored
  // blocks), column block r of `rows`, and the q/k/v slab r % 3 of `heads`.
  EXPECT_EQ(read_rect(reader, kRoleParam, "grid", {2 * r, 0}, {2, 12}),
            make_block(1, kGrid, {2 * r, 0}, {2, 12}));
  EXPECT_EQ(read_rect(reader, kRoleExpAvg, "grid", {2 * r, 0}, {2, 12}),
            make_block(5, kGrid, {2 * r, 0}, {2, 12}));
  const int64_t col = r == 3 ? 4 : r;
  EXPECT_EQ(read_rect(reader, kRoleParam, "rows", {0, col}, {16, 1}),
            make_block(2, kRows, {0, col}, {16, 1}));
  EXPECT_EQ(read_rect(reader, kRoleParam, "heads", {r % 3, 0, 0, 0}, {1, 4, 2, 6}),
            make_block(3, kHeads, {r % 3, 0, 0, 0}, {1, 4, 2, 6}));
  if (r == 0) {
    const VerifyReport report = verify_checkpoint(dir);
    EXPECT_EQ(report.files, 4);
    EXPECT_EQ(report.tensors, 6);
  }
}

TEST_F(CheckpointMpi, AFailureOnOneRankThrowsEverywhereAndKeepsThePreviousCheckpoint) {
  ASSERT_EQ(world.size(), 4);
  SharedScratchDir root(world);
  RankShards good = shards_of(r, 1);
  const fs::path previous = save_checkpoint(world, root.path(), 1, good.slices, {});
  // Rank 2 passes a rectangle that does not fit its tensor: every rank throws, naming rank 2.
  RankShards bad = shards_of(r, 2);
  if (r == 2) bad.slices[1].offset = {13, 0};
  std::string message;
  try {
    save_checkpoint(world, root.path(), 2, bad.slices, {});
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(r == 2 ? "does not fit" : "failed on rank 2"), std::string::npos)
      << message;
  // Rank 3 leaves out its block of `rows`: the files are written, but rank 0 refuses to commit.
  RankShards incomplete = shards_of(r, 2);
  if (r == 3) incomplete.slices.erase(incomplete.slices.begin() + 1);
  message.clear();
  try {
    save_checkpoint(world, root.path(), 3, incomplete.slices, {});
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(r == 0 ? "stored in no rank file" : "failed on rank 0"), std::string::npos)
      << message;
  world.barrier();
  EXPECT_EQ(find_latest_checkpoint(root.path()), previous);
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{1});
}

// Polls `save` at "step boundaries" until it is committed (every rank polls as often: the
// answer of each poll is agreed).
fs::path poll_until_committed(BackgroundSave& save, Communicator& world) {
  for (;;)
    if (std::optional<fs::path> dir = save.poll(world)) return *dir;
}

TEST_F(CheckpointMpi, ABackgroundSaveWritesWhatTheSynchronousOneWrites) {
  ASSERT_EQ(world.size(), 4);
  SharedScratchDir root(world);
  RankShards mine = shards_of(r, 1);
  CheckpointInfo info;
  info.config_text = "n_layer = 1\n";
  const fs::path sync_dir = save_checkpoint(world, root.path() / "sync", 7, mine.slices, info);
  BackgroundSave background;
  int after_commit_calls = 0;
  bool copied = false;  // the thread runs the snapshot copy before it writes
  background.start(
      std::make_unique<CheckpointSave>(world, root.path() / "async", 7, mine.slices, info),
      [&] { copied = true; }, [&] { ++after_commit_calls; });
  background.wait_until_copied();
  EXPECT_TRUE(copied);
  EXPECT_TRUE(background.in_flight());
  const fs::path dir = poll_until_committed(background, world);
  EXPECT_FALSE(background.in_flight());
  EXPECT_EQ(dir, root.path() / "async" / "step_00000007");
  EXPECT_EQ(after_commit_calls, r == 0 ? 1 : 0);  // rank 0's thread, after the commit
  EXPECT_EQ(find_latest_checkpoint(root.path() / "async"), dir);
  CheckpointReader a(sync_dir), b(dir);
  ASSERT_EQ(a.slices().size(), b.slices().size());
  for (size_t i = 0; i < a.slices().size(); ++i) {
    const StoredSlice& s = a.slices()[i];
    EXPECT_EQ(s.checksum, b.slices()[i].checksum) << s.name;
    EXPECT_EQ(read_rect(a, s.role, s.name, s.offset, s.count),
              read_rect(b, s.role, s.name, s.offset, s.count));
  }
  EXPECT_FALSE(background.wait(world));  // nothing in flight: a no-op
}

TEST_F(CheckpointMpi, ABackgroundWriteFailingOnOneRankThrowsEverywhereFromAPoll) {
  ASSERT_EQ(world.size(), 4);
  SharedScratchDir root(world);
  RankShards mine = shards_of(r, 1);
  const fs::path previous = save_checkpoint(world, root.path(), 1, mine.slices, {});
  auto save =
      std::make_unique<CheckpointSave>(world, root.path(), 2, mine.slices, CheckpointInfo{});
  // Rank 1's file cannot be created: a directory is in its place.
  const fs::path blocked = root.path() / "step_00000002.tmp" / rank_file_name(1);
  if (r == 1) fs::create_directory(blocked);
  BackgroundSave background;
  background.start(std::move(save), nullptr, nullptr);
  std::string message;
  try {
    poll_until_committed(background, world);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_FALSE(background.in_flight());
  EXPECT_NE(message.find("saving checkpoint step 2"), std::string::npos) << message;
  if (r == 1)
    EXPECT_NE(message.find("writing " + blocked.string()), std::string::npos) << message;
  else
    EXPECT_NE(message.find("failed on rank 1 (writing rank files)"), std::string::npos) << message;
  world.barrier();
  EXPECT_EQ(find_latest_checkpoint(root.path()), previous);
  EXPECT_EQ(list_checkpoints(root.path()), std::vector<int64_t>{1});
}

}  // namespace
}  // namespace shardlm
