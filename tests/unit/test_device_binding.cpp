// The GPU binding of --device cuda (kernels/device_binding.h): device = node-local rank, a node
// with more ranks than devices refused naming the host and both counts, the launcher's local
// rank checked against MPI's; and the device count's override (kernels/registry.h). Across test
// hosts with real MPI: tests/multinode (multinode_gpu-binding).
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/device_binding.h"
#include "kernels/registry.h"
#include "parallel/self_comm.h"
#include "support_errors.h"

namespace shardlm {
namespace {

using testing::expect_error;

NodePlace place(int world_rank, int local_rank, int local_ranks) {
  return {.host = "nodeB",
          .world_rank = world_rank,
          .local_rank = local_rank,
          .local_ranks = local_ranks};
}

TEST(DeviceBinding, EachRankOfANodeTakesTheDeviceOfItsLocalRank) {
  for (int local = 0; local < 4; ++local) {
    const DeviceBinding b = choose_device(place(4 + local, local, 4), 4, "");
    EXPECT_EQ(b.device, local);
    EXPECT_EQ(b.device_count, 4);
  }
  EXPECT_EQ(choose_device(place(1, 1, 2), 8, "").device, 1);  // fewer ranks than devices
}

TEST(DeviceBinding, DescribesRankHostLocalRankAndDevice) {
  const NodePlace p = place(3, 1, 2);
  EXPECT_EQ(describe_device_binding(p, choose_device(p, 2, "")),
            "rank 3 on host nodeB: local rank 1 of 2, device 1 of 2");
}

TEST(DeviceBinding, RefusesMoreRanksOnANodeThanDevicesNamingTheHost) {
  expect_error([] { choose_device(place(2, 0, 3), 2, ""); },
               {"host nodeB", "runs 3 rank(s)", "sees 2 CUDA device(s)", "--gpus-per-node"});
  expect_error([] { choose_device(place(0, 0, 1), 0, ""); },
               {"--device cuda", "host nodeB", "sees no CUDA device", "--device cpu"});
  // Every rank of the node is refused, not only those past the last device.
  expect_error([] { choose_device(place(5, 2, 3), 2, "0,1"); },
               {"host nodeB", "runs 3 rank(s)", "(CUDA_VISIBLE_DEVICES=0,1)"});
}

TEST(DeviceBinding, TheLaunchersLocalRankMustAgreeWithMpis) {
  check_launcher_local_rank(place(3, 1, 2), "SLURM_LOCALID", "1");
  check_launcher_local_rank(place(3, 1, 2), "SLURM_LOCALID", nullptr);  // not set
  expect_error([] { check_launcher_local_rank(place(3, 1, 2), "OMPI_COMM_WORLD_LOCAL_RANK", "0"); },
               {"rank 3 on host nodeB", "OMPI_COMM_WORLD_LOCAL_RANK=0", "(1 of 2"});
  expect_error([] { check_launcher_local_rank(place(3, 1, 2), "SLURM_LOCALID", "x"); },
               {"SLURM_LOCALID"});
}

TEST(DeviceBinding, TheFakeDeviceCountStandsInForTheRuntimes) {
  ASSERT_EQ(setenv(kFakeCudaDeviceCountVar, "3", 1), 0);
  EXPECT_EQ(cuda_device_count(), 3);
  select_cuda_device(2);  // faked: no device is selected, nothing to fail
  ASSERT_EQ(setenv(kFakeCudaDeviceCountVar, "-1", 1), 0);
  expect_error([] { cuda_device_count(); }, {kFakeCudaDeviceCountVar, ">= 0", "-1"});
  ASSERT_EQ(setenv(kFakeCudaDeviceCountVar, "two", 1), 0);
  expect_error([] { cuda_device_count(); }, {kFakeCudaDeviceCountVar, "two"});
  ASSERT_EQ(unsetenv(kFakeCudaDeviceCountVar), 0);
#ifndef SHARDLM_HAVE_CUDA
  expect_error([] { cuda_device_count(); }, {"built without CUDA", kFakeCudaDeviceCountVar});
#endif
}

TEST(DeviceBinding, AGroupOfOneIsLocalRankZeroOfOne) {
  SelfCommunicator self("world");
  EXPECT_EQ(self.rank_on_my_node(), 0);
  EXPECT_EQ(self.ranks_on_my_node(), 1);
}

}  // namespace
}  // namespace shardlm
