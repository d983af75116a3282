// The 3D mesh on 8 ranks: coordinates follow world = pp*(dp*tp) + dp*tp + tp, and each
// group's communicator holds exactly the world ranks that share the other two coordinates.
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "parallel/mesh.h"
#include "support_errors.h"
#include "support_source_location.h"

namespace shardlm {
namespace {

using testing::expect_error;

struct ShapeCase {
  int tp, pp, expected_dp;
};

class MeshTest : public ::testing::TestWithParam<ShapeCase> {
 protected:
  void SetUp() override {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    ASSERT_EQ(size_, 8) << "test_mesh expects mpirun -np 8";
  }
  int rank_ = -1, size_ = -1;
};

// World ranks of a group, gathered through the group's own communicator.
std::vector<int32_t> members(Communicator& group, int world_rank) {
  std::vector<int32_t> out(group.size());
  const int32_t me = world_rank;
  group.all_gather(&me, out.data(), 1, DType::I32);
  return out;
}

TEST_P(MeshTest, CoordinatesAndGroups) {
  const ShapeCase c = GetParam();
  Mesh mesh(c.tp, c.pp);
  const int tp = c.tp, pp = c.pp, dp = c.expected_dp;
  EXPECT_EQ(mesh.sizes().tp, tp);
  EXPECT_EQ(mesh.sizes().pp, pp);
  EXPECT_EQ(mesh.sizes().dp, dp);
  EXPECT_EQ(mesh.world_size(), 8);
  EXPECT_EQ(mesh.world_rank(), rank_);
  EXPECT_EQ(error_rank(), rank_);

  // TP fastest, then DP, then PP.
  const int t = rank_ % tp, d = (rank_ / tp) % dp, s = rank_ / (tp * dp);
  EXPECT_EQ(mesh.tp_rank(), t);
  EXPECT_EQ(mesh.dp_rank(), d);
  EXPECT_EQ(mesh.pp_rank(), s);
  EXPECT_EQ(mesh_world_rank(mesh.sizes(), {s, d, t}), rank_);
  EXPECT_EQ(mesh.describe(), "rank " + std::to_string(rank_) + " = (pp " + std::to_string(s) +
                                 ", dp " + std::to_string(d) + ", tp " + std::to_string(t) +
                                 ") of pp" + std::to_string(pp) + " x dp" + std::to_string(dp) +
                                 " x tp" + std::to_string(tp));

  EXPECT_EQ(mesh.world().name(), "world");
  EXPECT_EQ(mesh.tp().name(), "tp");
  EXPECT_EQ(mesh.dp().name(), "dp");
  EXPECT_EQ(mesh.pp().name(), "pp");
  EXPECT_EQ(mesh.world().rank(), rank_);
  EXPECT_EQ(mesh.tp().rank(), t);
  EXPECT_EQ(mesh.dp().rank(), d);
  EXPECT_EQ(mesh.pp().rank(), s);

  std::vector<int32_t> expected_world(8), expected_tp, expected_dp, expected_pp;
  for (int i = 0; i < 8; ++i) expected_world[i] = i;
  for (int i = 0; i < tp; ++i) expected_tp.push_back(s * dp * tp + d * tp + i);
  for (int i = 0; i < dp; ++i) expected_dp.push_back(s * dp * tp + i * tp + t);
  for (int i = 0; i < pp; ++i) expected_pp.push_back(i * dp * tp + d * tp + t);
  EXPECT_EQ(members(mesh.world(), rank_), expected_world);
  EXPECT_EQ(members(mesh.tp(), rank_), expected_tp);
  EXPECT_EQ(members(mesh.dp(), rank_), expected_dp);
  EXPECT_EQ(members(mesh.pp(), rank_), expected_pp);
}

INSTANTIATE_TEST_SUITE_P(EightRanks, MeshTest,
                         ::testing::Values(ShapeCase{2, 2, 2}, ShapeCase{4, 1, 2},
                                           ShapeCase{1, 8, 1}, ShapeCase{2, 4, 1},
                                           ShapeCase{1, 1, 8}),
                         [](const auto& info) {
                           return "tp" + std::to_string(info.param.tp) + "_pp" +
                                  std::to_string(info.param.pp);
                         });

TEST(MeshDescribe, MatchesDocumentedExample) {
  Mesh mesh(2, 2);
  if (mesh.world_rank() == 5) {
    EXPECT_EQ(mesh.describe(), "rank 5 = (pp 1, dp 0, tp 1) of pp2 x dp2 x tp2");
  }
}

void expect_invalid(
    int tp, int pp,
    shardlm::testing::SourceLocation where = shardlm::testing::SourceLocation::current()) {
  expect_error([&] { Mesh mesh(tp, pp); },
               {"tp=" + std::to_string(tp), "pp=" + std::to_string(pp), "world size 8"}, where);
}

TEST(MeshInvalid, ShapesThatDoNotDivideTheWorldThrowEverywhere) {
  expect_invalid(3, 1);
  expect_invalid(2, 3);
  expect_invalid(16, 1);
  expect_invalid(0, 1);
  expect_invalid(1, -2);
  // Every rank threw before any collective, so the world is still in step.
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace shardlm
