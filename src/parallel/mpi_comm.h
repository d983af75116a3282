// Communicator implementations for host memory: MpiCommunicator over an MPI communicator, and
// SelfCommunicator for a one-rank group that needs no MPI (single-process runs and tests).
#pragma once

#include <mpi.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "parallel/self_comm.h"

namespace shardlm {

// One MPI call's share of a large buffer: elements [offset, offset + count).
struct Chunk {
  size_t offset;
  int count;
};

// Splits [0, count) into consecutive pieces of at most max_chunk elements, because MPI counts
// are int. count == 0 gives no pieces. max_chunk must be in [1, INT_MAX].
std::vector<Chunk> split_into_chunks(size_t count, size_t max_chunk);

// Owns a private MPI communicator (a dup or a split of its parent, freed in the destructor) with
// MPI_ERRORS_RETURN set, so that a failing call throws shardlm::Error instead of aborting.
//
// bytes_sent() counts what a ring algorithm sends from this rank, whatever algorithm MPI picks,
// so that bandwidth figures are comparable across MPI implementations and with NCCL
// ("bus bandwidth" in nccl-tests). With p ranks and b = bytes of one rank's buffer:
//   all_reduce      2 (p-1)/p * b              (reduce-scatter then all-gather)
//   reduce_scatter  (p-1)/p * b_total = (p-1) * recv bytes
//   all_gather      (p-1)/p * b_total = (p-1) * send bytes
//   broadcast       b on the root, 0 elsewhere
//   send, send_recv b sent;  recv 0;  barrier 0
class MpiCommunicator : public Communicator {
 public:
  // Duplicates `parent` (which stays owned by the caller).
  MpiCommunicator(MPI_Comm parent, std::string name);
  // Collective over `parent`: ranks with the same color form one group, ordered by key.
  static std::unique_ptr<MpiCommunicator> split(MPI_Comm parent, int color, int key,
                                                std::string name);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return name_; }
  MPI_Comm handle() const { return comm_; }

  void all_reduce(void* buf, size_t count, DType dtype, ReduceOp op) override;
  void reduce_scatter(const void* send, void* recv, size_t recv_count, DType dtype,
                      ReduceOp op) override;
  void all_gather(const void* send, void* recv, size_t send_count, DType dtype) override;
  void reduce_scatter_v(const void* send, void* recv, const std::vector<size_t>& counts,
                        DType dtype, ReduceOp op) override;
  void all_gather_v(const void* send, void* recv, const std::vector<size_t>& counts,
                    DType dtype) override;
  void broadcast(void* buf, size_t count, DType dtype, int root) override;
  void send(const void* buf, size_t count, DType dtype, int dst, int tag) override;
  void recv(void* buf, size_t count, DType dtype, int src, int tag) override;
  void send_recv(const void* send_buf, size_t send_count, int dst, int send_tag, void* recv_buf,
                 size_t recv_count, int src, int recv_tag, DType dtype) override;
  void barrier() override;
  int ranks_on_my_node() override;
  int rank_on_my_node() override;
  std::unique_ptr<Communicator> split(int color, int key, std::string name) override {
    return split(comm_, color, key, std::move(name));
  }
  uint64_t bytes_sent() const override { return bytes_sent_; }

  // Largest element count passed to one MPI call (INT_MAX by default). Tests lower it to drive
  // the chunked paths with small buffers; every rank of the group must use the same value.
  void set_max_chunk_elements(size_t max_chunk);
  size_t max_chunk_elements() const { return max_chunk_; }

 private:
  struct Adopt {};
  MpiCommunicator(Adopt, MPI_Comm owned, std::string name);
  void init_after_create();
  // Per-rank block limit for reduce_scatter/all_gather, so one call moves <= max_chunk_ in all.
  size_t max_block_chunk() const;
  void check_peer(int peer, const char* what) const;
  // `query` (MPI_Comm_size or MPI_Comm_rank) of the ranks sharing this rank's node. Collective.
  int node_query(int (*query)(MPI_Comm, int*));
  // Throws unless the message behind `status` filled the whole chunk.
  void check_received(const MPI_Status& status, const Chunk& chunk, DType dtype, int src,
                      int tag) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  size_t max_chunk_ = INT_MAX;
  uint64_t bytes_sent_ = 0;
};

// The world: MPI_COMM_WORLD when MPI is initialised (and not finalised) with more than one
// rank, else a group of one.
std::unique_ptr<Communicator> world_communicator();

}  // namespace shardlm
