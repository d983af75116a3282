// main() for the MPI GoogleTest binaries: every rank runs every test; rank 0 prints the usual
// report, the other ranks print only their own failures (prefixed with the rank), and every
// rank exits non-zero when a test failed on ANY rank, so mpirun and CTest see the failure.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "parallel/mesh.h"

namespace {

// Replaces GoogleTest's printer on ranks other than 0: silent unless an assertion fails.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  // The test's name is taken at its start: GoogleTest holds its own lock while it reports a
  // part result, so asking it for current_test_info() there would deadlock.
  void OnTestStart(const ::testing::TestInfo& test) override {
    current_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] FAILED %s at %s:%d\n%s\n", rank_, current_.c_str(),
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
    std::fflush(stderr);
  }

 private:
  int rank_;
  std::string current_;
};

}  // namespace

int main(int argc, char** argv) {
  shardlm::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);

  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }

  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  std::vector<int> failed_by_rank(static_cast<size_t>(size));
  MPI_Allgather(&failed, 1, MPI_INT, failed_by_rank.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::string failing_ranks;
  for (int r = 0; r < size; ++r)
    if (failed_by_rank[r]) failing_ranks += (failing_ranks.empty() ? "" : ",") + std::to_string(r);
  if (rank == 0 && !failing_ranks.empty())
    std::fprintf(stderr, "MPI test failed on rank(s) %s of %d\n", failing_ranks.c_str(), size);
  return failing_ranks.empty() ? 0 : 1;
}
