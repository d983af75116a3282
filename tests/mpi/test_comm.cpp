// Collectives of MpiCommunicator with rank-valued inputs (element i on rank r = f(r, i)), so
// every expected result is exact. Runs under mpirun with 3 and 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "parallel/consistency.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"
#include "support_source_location.h"

namespace shardlm {
namespace {

using testing::expect_error;

template <class T>
DType dtype_of();
template <>
DType dtype_of<float>() {
  return DType::F32;
}
template <>
DType dtype_of<double>() {
  return DType::F64;
}
template <>
DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
DType dtype_of<int64_t>() {
  return DType::I64;
}
template <>
DType dtype_of<uint8_t>() {
  return DType::U8;
}

// Runs `body` with the default chunking and with chunks much smaller than the buffers: the
// second pass drives every chunked path (several MPI calls per collective, block chunks of 1
// element when the limit is below the group size).
template <class Body>
void with_and_without_chunking(MpiCommunicator& comm, Body body) {
  for (const size_t max_chunk : {size_t{INT_MAX}, size_t{7}, size_t{2}}) {
    SCOPED_TRACE("max chunk " + std::to_string(max_chunk));
    comm.set_max_chunk_elements(max_chunk);
    body();
  }
}

class CommTest : public ::testing::Test {
 protected:
  MpiCommunicator comm{MPI_COMM_WORLD, "world"};
  const int p = comm.size();
  const int r = comm.rank();
};

TEST_F(CommTest, MatchesWorld) {
  int world_rank = -1, world_size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  EXPECT_EQ(comm.rank(), world_rank);
  EXPECT_EQ(comm.size(), world_size);
  EXPECT_EQ(comm.name(), "world");
  EXPECT_GE(comm.size(), 2) << "run this test under mpirun with several ranks";
}

// The tests run on one machine: every rank of the group is on this node, and a split group
// counts only its own members.
TEST_F(CommTest, RanksOnMyNode) {
  EXPECT_EQ(comm.ranks_on_my_node(), p);
  auto odd = MpiCommunicator::split(MPI_COMM_WORLD, r % 2, r, "parity");
  EXPECT_EQ(odd->ranks_on_my_node(), odd->size());
}

// 16-bit float patterns travel through point-to-point and gathers, but MPI has no arithmetic
// for them: a reduction is refused with the dtype named.
TEST_F(CommTest, Bf16MovesButDoesNotReduce) {
  std::vector<uint16_t> mine(3, static_cast<uint16_t>(0x3F80 + r)), all(3 * static_cast<size_t>(p));
  comm.all_gather(mine.data(), all.data(), 3, DType::BF16);
  for (int q = 0; q < p; ++q) EXPECT_EQ(all[3 * static_cast<size_t>(q)], 0x3F80 + q);
  expect_error([&] { comm.all_reduce(mine.data(), 3, DType::BF16, ReduceOp::Sum); }, {"bf16"});
}

template <class T>
class AllReduceTyped : public CommTest {};
using SumTypes = ::testing::Types<float, double, int32_t, int64_t>;
TYPED_TEST_SUITE(AllReduceTyped, SumTypes);

TYPED_TEST(AllReduceTyped, SumMaxMin) {
  using T = TypeParam;
  const int p = this->p, r = this->r;
  const size_t n = 1000;
  with_and_without_chunking(this->comm, [&] {
    std::vector<T> sum(n), max(n), min(n);
    for (size_t i = 0; i < n; ++i) {
      sum[i] = static_cast<T>((r + 1) * static_cast<int>(i % 97 + 1));
      // The winning rank changes with i, so "take one rank's value" cannot pass.
      max[i] = min[i] = static_cast<T>((r + static_cast<int>(i)) % p) - static_cast<T>(1);
    }
    this->comm.all_reduce(sum.data(), n, dtype_of<T>(), ReduceOp::Sum);
    this->comm.all_reduce(max.data(), n, dtype_of<T>(), ReduceOp::Max);
    this->comm.all_reduce(min.data(), n, dtype_of<T>(), ReduceOp::Min);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(sum[i], static_cast<T>(static_cast<int>(i % 97 + 1) * p * (p + 1) / 2)) << i;
      ASSERT_EQ(max[i], static_cast<T>(p - 2)) << i;
      ASSERT_EQ(min[i], static_cast<T>(-1)) << i;
    }
  });
}

TEST_F(CommTest, AllReduceValuesOnlyRepresentableInWideTypes) {
  // int64 beyond 2^32 and doubles with fractions: a 32-bit or float path would round them.
  const size_t n = 64;
  std::vector<int64_t> big(n);
  std::vector<double> frac(n);
  for (size_t i = 0; i < n; ++i) {
    big[i] = (int64_t{r + 1} << 33) + static_cast<int64_t>(i);
    frac[i] = r * 1000.0 + static_cast<double>(i) * 0.125 + 1e-9 * r;
  }
  comm.all_reduce(big.data(), n, DType::I64, ReduceOp::Sum);
  comm.all_reduce(frac.data(), n, DType::F64, ReduceOp::Sum);
  const int64_t rank_sum = int64_t{p} * (p + 1) / 2;
  const int rank_index_sum = p * (p - 1) / 2;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(big[i], (rank_sum << 33) + int64_t{p} * static_cast<int64_t>(i));
    EXPECT_NEAR(frac[i], 1000.0 * rank_index_sum + p * 0.125 * i + 1e-9 * rank_index_sum, 1e-12);
  }
}

TEST_F(CommTest, AllReduceLargeBuffer) {
  // Past the eager limit, so MPI's large-message algorithm runs.
  const size_t n = size_t{1} << 20;
  std::vector<float> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(r + static_cast<int>(i % 1024));
  comm.all_reduce_sum(buf.data(), n);
  for (size_t i = 0; i < n; i += 4099)
    ASSERT_EQ(buf[i], static_cast<float>(p * (p - 1) / 2 + p * static_cast<int>(i % 1024))) << i;
}

TEST_F(CommTest, ReduceScatter) {
  const size_t block = 23;
  with_and_without_chunking(comm, [&] {
    // Element j of rank r's send buffer = 100 r + j; rank r gets block r summed (and the max).
    std::vector<float> send(p * block);
    for (size_t j = 0; j < send.size(); ++j)
      send[j] = static_cast<float>(100 * r + static_cast<int>(j));
    std::vector<float> sum(block, -1.0f), max(block, -1.0f);
    comm.reduce_scatter(send.data(), sum.data(), block, DType::F32, ReduceOp::Sum);
    comm.reduce_scatter(send.data(), max.data(), block, DType::F32, ReduceOp::Max);
    for (size_t k = 0; k < block; ++k) {
      const int j = r * static_cast<int>(block) + static_cast<int>(k);
      ASSERT_EQ(sum[k], static_cast<float>(100 * p * (p - 1) / 2 + p * j)) << k;
      ASSERT_EQ(max[k], static_cast<float>(100 * (p - 1) + j)) << k;
    }
  });
}

TEST_F(CommTest, ReduceScatterRejectsOverlappingBuffers) {
  std::vector<float> buf(p * 4, 1.0f);
  expect_error(
      [&] { comm.reduce_scatter(buf.data(), buf.data() + r * 4, 4, DType::F32, ReduceOp::Sum); },
      {"'world'", "reduce_scatter", "overlap"});
}

template <class T>
void check_all_gather(MpiCommunicator& comm, size_t block) {
  const int p = comm.size(), r = comm.rank();
  std::vector<T> send(block), recv(p * block);
  for (size_t i = 0; i < block; ++i) send[i] = static_cast<T>(r * 10 + static_cast<int>(i % 10));
  comm.all_gather(send.data(), recv.data(), block, dtype_of<T>());
  for (int q = 0; q < p; ++q)
    for (size_t i = 0; i < block; ++i)
      ASSERT_EQ(recv[q * block + i], static_cast<T>(q * 10 + static_cast<int>(i % 10)))
          << "block " << q << " element " << i;
}

TEST_F(CommTest, AllGather) {
  with_and_without_chunking(comm, [&] {
    check_all_gather<float>(comm, 23);
    check_all_gather<double>(comm, 5);
    check_all_gather<int32_t>(comm, 1);
    check_all_gather<int64_t>(comm, 16);
    check_all_gather<uint8_t>(comm, 9);
  });
}

// Unequal blocks, as ZeRO-2/3 cut a layer's flat range at partition boundaries: rank q's
// block has (q * 3) % 5 elements (some empty), chunked windows crossing block boundaries.
std::vector<size_t> uneven_counts(int p) {
  std::vector<size_t> counts;
  for (int q = 0; q < p; ++q) counts.push_back(static_cast<size_t>((q * 3) % 5));
  return counts;
}

TEST_F(CommTest, ReduceScatterV) {
  const std::vector<size_t> counts = uneven_counts(p);
  size_t total = 0, mine = 0;
  for (int q = 0; q < p; ++q) {
    if (q < r) mine += counts[static_cast<size_t>(q)];
    total += counts[static_cast<size_t>(q)];
  }
  with_and_without_chunking(comm, [&] {
    std::vector<float> send(total);
    for (size_t j = 0; j < total; ++j) send[j] = static_cast<float>(100 * r + static_cast<int>(j));
    std::vector<float> sum(counts[static_cast<size_t>(r)] + 1, -1.0f);
    comm.reduce_scatter_v(send.data(), sum.data(), counts, DType::F32, ReduceOp::Sum);
    for (size_t k = 0; k < counts[static_cast<size_t>(r)]; ++k)
      ASSERT_EQ(sum[k], static_cast<float>(100 * p * (p - 1) / 2 + p * static_cast<int>(mine + k)))
          << k;
    EXPECT_EQ(sum.back(), -1.0f);  // nothing written past this rank's block
  });
}

TEST_F(CommTest, AllGatherV) {
  const std::vector<size_t> counts = uneven_counts(p);
  with_and_without_chunking(comm, [&] {
    std::vector<float> send(counts[static_cast<size_t>(r)]);
    for (size_t i = 0; i < send.size(); ++i)
      send[i] = static_cast<float>(r * 10 + static_cast<int>(i));
    size_t total = 0;
    for (const size_t c : counts) total += c;
    std::vector<float> recv(total, -1.0f);
    comm.all_gather_v(send.data(), recv.data(), counts, DType::F32);
    size_t at = 0;
    for (int q = 0; q < p; ++q)
      for (size_t i = 0; i < counts[static_cast<size_t>(q)]; ++i, ++at)
        ASSERT_EQ(recv[at], static_cast<float>(q * 10 + static_cast<int>(i))) << q << " " << i;
  });
  expect_error([&] { comm.all_gather_v(nullptr, nullptr, {1}, DType::F32); },
               {"'world'", "one count per rank"});
}

TEST_F(CommTest, BroadcastFromLastRank) {
  const int root = p - 1;
  with_and_without_chunking(comm, [&] {
    std::vector<int32_t> buf(50, -1);
    if (r == root) std::iota(buf.begin(), buf.end(), 42);
    comm.broadcast(buf.data(), buf.size(), DType::I32, root);
    for (size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i], 42 + static_cast<int>(i));
  });
}

TEST_F(CommTest, BroadcastRejectsRootOutsideGroup) {
  float x = 0.0f;
  expect_error([&] { comm.broadcast(&x, 1, DType::F32, p); },
               {"broadcast root rank " + std::to_string(p), "outside the group"});
  expect_error([&] { comm.broadcast(&x, 1, DType::F32, -1); },
               {"broadcast root rank -1", "outside the group"});
}

TEST_F(CommTest, SendRecvRing) {
  const int next = (r + 1) % p, prev = (r + p - 1) % p;
  for (const size_t n : {size_t{50}, size_t{1} << 18}) {  // eager and rendezvous sizes
    with_and_without_chunking(comm, [&] {
      if (n > 1000 && comm.max_chunk_elements() < 1000) return;  // too many tiny messages
      std::vector<float> out(n), in(n, -1.0f);
      for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(r * 1000 + static_cast<int>(i % 1000));
      // Even ranks send first and odd ranks receive first, so blocking sends cannot deadlock
      // (also with an odd group size, where the last and first rank are both even).
      if (r % 2 == 0) {
        comm.send(out.data(), n, DType::F32, next, 7);
        comm.recv(in.data(), n, DType::F32, prev, 7);
      } else {
        comm.recv(in.data(), n, DType::F32, prev, 7);
        comm.send(out.data(), n, DType::F32, next, 7);
      }
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(in[i], static_cast<float>(prev * 1000 + static_cast<int>(i % 1000))) << i;
    });
  }
}

TEST_F(CommTest, SendRecvRingShiftNeedsNoOrdering) {
  // Every rank sends and receives at once; blocking sends in this pattern could deadlock.
  const int next = (r + 1) % p, prev = (r + p - 1) % p;
  for (const size_t n : {size_t{50}, size_t{1} << 18}) {
    with_and_without_chunking(comm, [&] {
      if (n > 1000 && comm.max_chunk_elements() < 1000) return;
      std::vector<float> out(n), in(n, -1.0f);
      for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(r * 1000 + static_cast<int>(i % 1000));
      const uint64_t before = comm.bytes_sent();
      comm.send_recv(out.data(), n, next, 11, in.data(), n, prev, 11, DType::F32);
      EXPECT_EQ(comm.bytes_sent() - before, n * sizeof(float));
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(in[i], static_cast<float>(prev * 1000 + static_cast<int>(i % 1000))) << i;
    });
  }
}

TEST_F(CommTest, SendRecvPairsWithUnequalCounts) {
  // Ranks 2k and 2k+1 swap 30 and 5 elements: with small chunks one side has more chunks than
  // the other, so the exchange ends with plain sends on one rank and plain recvs on its peer.
  const int peer = r % 2 == 0 ? r + 1 : r - 1;
  if (peer >= p) return;  // the odd one out of an odd group sits this out
  with_and_without_chunking(comm, [&] {
    const size_t mine = r % 2 == 0 ? 30 : 5, theirs = r % 2 == 0 ? 5 : 30;
    std::vector<int64_t> out(mine), in(theirs, -1);
    for (size_t i = 0; i < mine; ++i) out[i] = r * 100 + static_cast<int64_t>(i);
    const uint64_t before = comm.bytes_sent();
    comm.send_recv(out.data(), mine, peer, 12, in.data(), theirs, peer, 12, DType::I64);
    EXPECT_EQ(comm.bytes_sent() - before, mine * sizeof(int64_t));  // what this rank sent
    for (size_t i = 0; i < theirs; ++i) ASSERT_EQ(in[i], peer * 100 + static_cast<int64_t>(i));
  });
}

TEST_F(CommTest, MpiErrorsBecomeExceptions) {
  // Rank 1 posts a receive shorter than the message: MPI_ERR_TRUNCATE must throw, not abort.
  std::vector<int32_t> four{1, 2, 3, 4}, two(2);
  if (r == 0) comm.send(four.data(), 4, DType::I32, 1, 3);
  if (r == 1) {
    expect_error([&] { comm.recv(two.data(), 2, DType::I32, 0, 3); }, {"MPI error", "[rank"});
  }
  comm.barrier();  // the communicator still works afterwards
}

TEST_F(CommTest, ReturnsErrorsEvenWhenTheParentAborts) {
  MPI_Comm fatal_parent;
  MPI_Comm_dup(MPI_COMM_WORLD, &fatal_parent);
  MPI_Comm_set_errhandler(fatal_parent, MPI_ERRORS_ARE_FATAL);
  MpiCommunicator child(fatal_parent, "child");
  auto split_child = MpiCommunicator::split(fatal_parent, 0, r, "split");
  MPI_Comm_free(&fatal_parent);
  for (const MpiCommunicator* c : {&child, split_child.get()}) {
    MPI_Errhandler handler;
    MPI_Comm_get_errhandler(c->handle(), &handler);
    EXPECT_EQ(handler, MPI_ERRORS_RETURN) << c->name();
    MPI_Errhandler_free(&handler);
  }
}

TEST_F(CommTest, ShortMessageIsAnError) {
  std::vector<int32_t> two{1, 2}, four(4);
  if (r == 0) comm.send(two.data(), 2, DType::I32, 1, 4);
  if (r == 1) {
    expect_error([&] { comm.recv(four.data(), 4, DType::I32, 0, 4); },
                 {"expected 4 elements", "got 2"});
  }
  comm.barrier();
}

TEST_F(CommTest, SendToRankOutsideGroupThrows) {
  float x = 0.0f;
  expect_error([&] { comm.send(&x, 1, DType::F32, p, 0); },
               {"send to rank " + std::to_string(p), "outside the group"});
  expect_error([&] { comm.recv(&x, 1, DType::F32, -1, 0); },
               {"recv from rank -1", "outside the group"});
}

TEST_F(CommTest, BytesSentFollowsRingFormula) {
  const uint64_t P = static_cast<uint64_t>(p);
  uint64_t expected = 0;
  ASSERT_EQ(comm.bytes_sent(), 0u);

  std::vector<float> f(1000, 1.0f);
  comm.all_reduce_sum(f.data(), f.size());
  expected += 2 * (P - 1) * 4000 / P;  // 2 (p-1)/p * n, rounded down
  EXPECT_EQ(comm.bytes_sent(), expected);

  std::vector<double> rs_send(P * 10, 1.0), rs_recv(10);
  comm.reduce_scatter(rs_send.data(), rs_recv.data(), 10, DType::F64, ReduceOp::Sum);
  expected += (P - 1) * 10 * 8;  // (p-1)/p * n_total
  EXPECT_EQ(comm.bytes_sent(), expected);

  std::vector<int32_t> ag_send(10, r), ag_recv(P * 10);
  comm.all_gather(ag_send.data(), ag_recv.data(), 10, DType::I32);
  expected += (P - 1) * 10 * 4;
  EXPECT_EQ(comm.bytes_sent(), expected);

  comm.broadcast(f.data(), 10, DType::F32, p - 1);
  if (r == p - 1) expected += 40;  // the root sends n, the others nothing
  EXPECT_EQ(comm.bytes_sent(), expected);

  if (r == 0) comm.send(f.data(), 10, DType::F32, 1, 9);
  if (r == 1) comm.recv(f.data(), 10, DType::F32, 0, 9);
  if (r == 0) expected += 40;  // recv counts nothing
  comm.barrier();
  EXPECT_EQ(comm.bytes_sent(), expected);

  // Chunking changes the number of MPI calls, not the bytes.
  const uint64_t before = comm.bytes_sent();
  comm.set_max_chunk_elements(7);
  comm.all_reduce_sum(f.data(), f.size());
  EXPECT_EQ(comm.bytes_sent() - before, 2 * (P - 1) * 4000 / P);
}

TEST_F(CommTest, SplitMakesGroupsOrderedByKey) {
  // Two groups (even and odd world ranks), ordered by descending world rank.
  auto half = MpiCommunicator::split(MPI_COMM_WORLD, r % 2, -r, "half");
  EXPECT_EQ(half->name(), "half");
  EXPECT_EQ(half->size(), (p - r % 2 + 1) / 2);
  std::vector<int32_t> members(half->size());
  const int32_t me = r;
  half->all_gather(&me, members.data(), 1, DType::I32);
  for (int k = 0; k < half->size(); ++k) EXPECT_EQ(members[k], members[0] - 2 * k);
  EXPECT_EQ(members[half->rank()], r);
}

TEST_F(CommTest, SameTextOnAllRanksPasses) {
  EXPECT_NO_THROW(check_same_on_all_ranks(comm, "effective config", "d_model=64\nlayers=2\n"));
}

std::string expected_mismatch(const std::vector<int>& ranks) {
  std::string list;
  for (const int q : ranks) list += (list.empty() ? "" : ",") + std::to_string(q);
  return "effective config differs between ranks: " +
         std::string(ranks.size() == 1 ? "rank " : "ranks ") + list +
         (ranks.size() == 1 ? " differs" : " differ") + " from rank 0";
}

void expect_mismatch_on_every_rank(
    Communicator& comm, const std::string& text, const std::vector<int>& differing,
    shardlm::testing::SourceLocation where = shardlm::testing::SourceLocation::current()) {
  expect_error([&] { check_same_on_all_ranks(comm, "effective config", text); },
               {expected_mismatch(differing)}, where);
}

TEST_F(CommTest, TextDifferingOnLastRankThrowsOnEveryRank) {
  expect_mismatch_on_every_rank(comm, r == p - 1 ? "layers=3" : "layers=2", {p - 1});
}

TEST_F(CommTest, TextDifferingOnRankZeroNamesAllOthers) {
  std::vector<int> others(p - 1);
  std::iota(others.begin(), others.end(), 1);
  expect_mismatch_on_every_rank(comm, r == 0 ? "lr=0.1" : "lr=0.2", others);
}

TEST_F(CommTest, TextDifferingOnUpperHalfNamesThoseRanks) {
  std::vector<int> upper;
  for (int q = p / 2; q < p; ++q) upper.push_back(q);
  expect_mismatch_on_every_rank(comm, r >= p / 2 ? "seed=2" : "seed=1", upper);
}

}  // namespace
}  // namespace shardlm
