// One checkpoint save cut into its phases, so that the local ones (writing this rank's file,
// rank 0's commit) can run on another thread while every collective one stays on the thread
// that owns the communicator (--async-save; MPI runs MPI_THREAD_FUNNELED). save_checkpoint() is
// these phases in a row: the commit protocol and its guarantees are the same
// (docs/checkpoint-format.md).
//
//   CheckpointSave save(world, root, step, slices, info);  // collective: step_X.tmp/ exists
//   std::string error = save.write_rank_file();             // local: this rank's file
//   save.gather(world, error);                              // collective: agree, records to rank 0
//   error = save.commit();                                  // local: rank 0 commits (others: "")
//   std::filesystem::path dir = save.committed(world, error);  // collective: agree
//
// A collective phase throws on every rank when a local phase failed on any rank, naming it.
// The slices' data must stay valid and unchanged until write_rank_file returns. HDF5 is serial:
// while a local phase runs on one thread, no other thread may touch a checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"

namespace shardlm {

// Every rank's file as rank 0's manifest lists it (gathered by CheckpointSave::gather).
struct GatheredRankFiles {
  std::vector<int64_t> file_bytes;  // per rank
  std::vector<uint32_t> file_crcs;  // per rank, of the whole file
  std::vector<StoredSlice> slices;  // rank 0's, then rank 1's, ...
};

class CheckpointSave {
 public:
  // Collective: checks the slices and metadata; rank 0 creates step_X.tmp/ (removing one an
  // interrupted save of the same step left). `sources` (empty, or one per slice): where the
  // elements of a slice with null data come from.
  CheckpointSave(Communicator& world, std::filesystem::path root, int64_t step,
                 std::vector<CheckpointSlice> slices, CheckpointInfo info,
                 std::vector<SliceSource> sources = {});

  // Local (no communicator): writes, fsyncs and checksums this rank's file. Returns "" or what
  // went wrong, naming the file; never throws.
  std::string write_rank_file();
  // Collective: agrees that every rank wrote its file (`write_error`: what write_rank_file
  // returned) and gathers their records for rank 0's manifest.
  void gather(Communicator& world, const std::string& write_error);
  // Local: rank 0 writes the manifest, renames step_X.tmp to step_X and updates `latest`;
  // nothing on the other ranks. Returns "" or what went wrong; never throws.
  std::string commit();
  // Collective: agrees that the commit worked (`commit_error`: what commit returned). Returns
  // the committed directory.
  std::filesystem::path committed(Communicator& world, const std::string& commit_error);

  int64_t step() const { return step_; }
  bool leader() const { return rank_ == 0; }

 private:
  std::filesystem::path root_, tmp_dir_, final_dir_;
  int64_t step_;
  int rank_, world_size_;
  std::vector<CheckpointSlice> slices_;
  std::vector<SliceSource> sources_;
  CheckpointInfo info_;
  std::vector<StoredSlice> written_;  // this rank's records, from write_rank_file
  int64_t file_bytes_ = 0;
  uint32_t file_crc_ = 0;
  GatheredRankFiles gathered_;  // after gather
};

}  // namespace shardlm
