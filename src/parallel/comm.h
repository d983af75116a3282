// Communicator interface used by the model, the pipeline schedule, DP gradient sync and
// checkpointing. Counts are ELEMENTS, never bytes; the DType travels with every call.
// Implementations: MpiCommunicator (mpi_comm.h, host memory: no CUDA-aware MPI is assumed, so
// device backends stage through kernels/host_staging.h) and SelfCommunicator (self_comm.h, a
// group of one). A NCCL communicator over device memory is the multi-GPU step still to come.
// All calls are blocking and collective over the communicator's group (except send/recv).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace shardlm {

enum class ReduceOp { Sum, Max, Min };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "tp", "dp", "pp", "world"

  // In place: buf[0..count) reduced over the group, result on every rank.
  virtual void all_reduce(void* buf, size_t count, DType dtype, ReduceOp op) = 0;
  // send has size()*recv_count elements: rank r receives the reduction of block r.
  virtual void reduce_scatter(const void* send, void* recv, size_t recv_count, DType dtype,
                              ReduceOp op) = 0;
  // recv has size()*send_count elements: block r comes from rank r.
  virtual void all_gather(const void* send, void* recv, size_t send_count, DType dtype) = 0;
  // Unequal blocks (ZeRO-2/3 over a layer's flat range, which partition boundaries cut
  // anywhere): send holds the blocks of every rank back to back, counts[r] elements each;
  // rank r receives the reduction of its block (counts[rank()] elements).
  virtual void reduce_scatter_v(const void* send, void* recv, const std::vector<size_t>& counts,
                                DType dtype, ReduceOp op) = 0;
  // recv gets every rank's block back to back (counts[r] elements from rank r); send has
  // counts[rank()] elements and must not overlap recv.
  virtual void all_gather_v(const void* send, void* recv, const std::vector<size_t>& counts,
                            DType dtype) = 0;
  virtual void broadcast(void* buf, size_t count, DType dtype, int root) = 0;
  virtual void send(const void* buf, size_t count, DType dtype, int dst, int tag) = 0;
  virtual void recv(void* buf, size_t count, DType dtype, int src, int tag) = 0;
  // Send to dst and receive from src at the same time (MPI_Sendrecv): two neighbours that
  // exchange in opposite directions can never both block in a send (pipeline 1F1B).
  virtual void send_recv(const void* send_buf, size_t send_count, int dst, int send_tag,
                         void* recv_buf, size_t recv_count, int src, int recv_tag, DType dtype) = 0;
  virtual void barrier() = 0;
  // How many ranks of this group share this rank's node (its shared-memory domain): the
  // CPU cores of a node are divided among them, and a GPU rank picks its device by it.
  // Collective over the group.
  virtual int ranks_on_my_node() = 0;
  // This rank's place among them, 0 .. ranks_on_my_node()-1 in rank order (a GPU rank's device
  // index). Collective over the group.
  virtual int rank_on_my_node() = 0;
  // Collective over the group: ranks passing the same color form a new group, ordered by key
  // (MPI_Comm_split). The new communicator is independent of this one.
  virtual std::unique_ptr<Communicator> split(int color, int key, std::string name) = 0;

  // Bytes this rank has sent through this communicator (for the bandwidth benchmarks).
  virtual uint64_t bytes_sent() const = 0;

  // Convenience for the common fp32 case.
  void all_reduce_sum(float* buf, size_t count) {
    all_reduce(buf, count, DType::F32, ReduceOp::Sum);
  }
};

}  // namespace shardlm
