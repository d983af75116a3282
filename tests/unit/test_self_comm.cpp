// The parallel pieces that run in one process without MPI: SelfCommunicator, the chunk
// splitter behind large MPI counts, mesh shape arithmetic, Mesh without MPI, FNV-1a.
#include <gtest/gtest.h>

#include <climits>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "parallel/consistency.h"
#include "parallel/mesh.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"

namespace shardlm {
namespace {

using testing::expect_error;

TEST(DTypeSize, Bytes) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::U8), 1u);
}

TEST(SelfCommunicator, IsAGroupOfOne) {
  SelfCommunicator self("tp");
  EXPECT_EQ(self.rank(), 0);
  EXPECT_EQ(self.size(), 1);
  EXPECT_EQ(self.name(), "tp");

  std::vector<float> buf{1.5f, -2.0f, 3.0f};
  self.all_reduce(buf.data(), buf.size(), DType::F32, ReduceOp::Sum);
  self.all_reduce(buf.data(), buf.size(), DType::F32, ReduceOp::Max);
  EXPECT_EQ(buf, (std::vector<float>{1.5f, -2.0f, 3.0f}));
  self.broadcast(buf.data(), buf.size(), DType::F32, 0);
  EXPECT_EQ(buf, (std::vector<float>{1.5f, -2.0f, 3.0f}));

  std::vector<double> out(3, 0.0), in{1.0, 2.0, 3.0};
  self.reduce_scatter(in.data(), out.data(), 3, DType::F64, ReduceOp::Sum);
  EXPECT_EQ(out, in);
  std::vector<int64_t> gathered(2, 0), mine{7, 8};
  self.all_gather(mine.data(), gathered.data(), 2, DType::I64);
  EXPECT_EQ(gathered, mine);
  self.all_gather(mine.data(), mine.data(), 2, DType::I64);  // in place is a no-op
  EXPECT_EQ(mine, (std::vector<int64_t>{7, 8}));

  self.barrier();
  EXPECT_EQ(self.bytes_sent(), 0u);
}

TEST(SelfCommunicator, PointToPointAndForeignRootsThrow) {
  SelfCommunicator self("pp");
  float x = 0.0f;
  expect_error([&] { self.send(&x, 1, DType::F32, 1, 0); }, {"'pp'", "cannot send to rank 1"});
  expect_error([&] { self.recv(&x, 1, DType::F32, 0, 0); }, {"'pp'", "cannot recv from rank 0"});
  expect_error([&] { self.send_recv(&x, 1, 0, 0, &x, 1, 0, 0, DType::F32); },
               {"'pp'", "cannot exchange with rank 0"});
  expect_error([&] { self.broadcast(&x, 1, DType::F32, 1); }, {"'pp'", "broadcast root 1"});
}

TEST(SplitIntoChunks, CoversTheRangeInOrder) {
  const auto chunks = split_into_chunks(10, 3);
  ASSERT_EQ(chunks.size(), 4u);
  const size_t offsets[] = {0, 3, 6, 9};
  const int counts[] = {3, 3, 3, 1};
  for (size_t k = 0; k < chunks.size(); ++k) {
    EXPECT_EQ(chunks[k].offset, offsets[k]);
    EXPECT_EQ(chunks[k].count, counts[k]);
  }
  EXPECT_EQ(split_into_chunks(9, 3).size(), 3u);
  EXPECT_TRUE(split_into_chunks(0, 3).empty());
  ASSERT_EQ(split_into_chunks(5, 10).size(), 1u);
  EXPECT_EQ(split_into_chunks(5, 10)[0].count, 5);
}

TEST(SplitIntoChunks, CountsBeyondIntMax) {
  const size_t limit = INT_MAX;
  const auto chunks = split_into_chunks(3 * limit + 5, limit);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[3].offset, 3 * limit);
  EXPECT_EQ(chunks[3].count, 5);
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(chunks[k].count, INT_MAX);
}

TEST(SplitIntoChunks, RejectsChunkSizesMpiCannotTake) {
  expect_error([] { split_into_chunks(10, 0); }, {"chunk size 0", "[1, INT_MAX]"});
  expect_error([] { split_into_chunks(10, size_t{INT_MAX} + 1); }, {"chunk size 2147483648"});
}

TEST(MeshShape, CoordinatesRoundTrip) {
  for (const auto& [world, tp, pp] : {std::tuple{8, 2, 2}, {8, 4, 1}, {12, 2, 3}, {6, 1, 6}}) {
    const MeshShape shape = make_mesh_shape(world, tp, pp);
    EXPECT_EQ(shape.dp * shape.tp * shape.pp, world);
    for (int rank = 0; rank < world; ++rank) {
      const MeshCoord c = mesh_coord(shape, rank);
      EXPECT_EQ(c.tp, rank % tp);
      EXPECT_EQ(c.dp, (rank / tp) % shape.dp);
      EXPECT_EQ(c.pp, rank / (tp * shape.dp));
      EXPECT_EQ(mesh_world_rank(shape, c), rank);
    }
  }
}

TEST(MeshShape, InvalidShapesNameTheirValues) {
  expect_error([] { make_mesh_shape(8, 3, 1); }, {"tp=3, pp=1, world size 8", "tp*pp = 3"});
  expect_error([] { make_mesh_shape(8, 0, 1); }, {"tp=0, pp=1", "at least 1"});
  expect_error([] { make_mesh_shape(8, 1, 0); }, {"tp=1, pp=0", "at least 1"});
  expect_error([] { mesh_coord(make_mesh_shape(8, 2, 2), 8); },
               {"world rank 8", "a mesh of 8 ranks"});
}

TEST(Mesh, WithoutMpiEveryGroupIsSelf) {
  Mesh mesh(1, 1);
  EXPECT_EQ(mesh.world_size(), 1);
  EXPECT_EQ(mesh.world_rank(), 0);
  EXPECT_EQ(mesh.describe(), "rank 0 = (pp 0, dp 0, tp 0) of pp1 x dp1 x tp1");
  for (Communicator* c : {&mesh.world(), &mesh.tp(), &mesh.dp(), &mesh.pp()}) {
    EXPECT_EQ(c->size(), 1);
    EXPECT_NE(dynamic_cast<SelfCommunicator*>(c), nullptr) << c->name();
  }
  EXPECT_EQ(mesh.tp().name(), "tp");
  // One process cannot hold tp=2.
  expect_error([] { Mesh(2, 1); }, {"tp=2, pp=1, world size 1"});
}

TEST(Fnv1a64, KnownVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(CheckSameOnAllRanks, OneRankAlwaysAgrees) {
  SelfCommunicator self("world");
  EXPECT_NO_THROW(check_same_on_all_ranks(self, "effective config", "anything"));
}

}  // namespace
}  // namespace shardlm
