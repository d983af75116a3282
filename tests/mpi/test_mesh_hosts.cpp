// Where the mesh puts ranks on hosts (issue: multi-node): under `--tp T --pp P`, every TP group
// lies inside one host (TP is the chattiest group: its all-reduces stay off the network when
// tp <= ranks per host, as Open MPI's by-slot mapping fills a host before the next), and each
// rank's ranks_on_my_node() is the number of world ranks on its host. Hosts are told apart by
// MPI_Get_processor_name, as Open MPI tells nodes apart. On one machine the check is trivial;
// tests/multinode runs it across test hosts.
#include <gtest/gtest.h>
#include <mpi.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "parallel/mesh.h"
#include "support_args.h"

namespace shardlm {
namespace {

using testing::test_option_int;

// Every world rank's host name, in rank order.
std::vector<std::string> host_of_every_rank() {
  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<char> all(static_cast<size_t>(world) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME,
                MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> hosts;
  for (int r = 0; r < world; ++r)
    hosts.emplace_back(&all[static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME]);
  return hosts;
}

TEST(MeshOnHosts, TensorParallelGroupsStayInsideAHost) {
  Mesh mesh(test_option_int("tp", 1), test_option_int("pp", 1));
  const std::vector<std::string> hosts = host_of_every_rank();
  std::map<std::pair<int, int>, std::set<std::string>> tp_group_hosts;  // (pp, dp) -> hosts
  for (int r = 0; r < mesh.world_size(); ++r) {
    const MeshCoord c = mesh_coord(mesh.sizes(), r);
    tp_group_hosts[{c.pp, c.dp}].insert(hosts[static_cast<size_t>(r)]);
  }
  for (const auto& [group, names] : tp_group_hosts)
    EXPECT_EQ(names.size(), 1u) << "the TP group of pp " << group.first << ", dp " << group.second
                                << " spans " << names.size() << " hosts";
  const std::set<std::string> distinct(hosts.begin(), hosts.end());
  EXPECT_EQ(static_cast<int>(distinct.size()), test_option_int("hosts", 1));
}

TEST(MeshOnHosts, RanksOnMyNodeCountTheRanksOfMyHost) {
  Mesh mesh(1, 1);
  const std::vector<std::string> hosts = host_of_every_rank();
  int on_my_host = 0;
  for (const std::string& h : hosts)
    on_my_host += h == hosts[static_cast<size_t>(mesh.world_rank())];
  EXPECT_EQ(mesh.world().ranks_on_my_node(), on_my_host)
      << "on " << hosts[static_cast<size_t>(mesh.world_rank())];
}

}  // namespace
}  // namespace shardlm
