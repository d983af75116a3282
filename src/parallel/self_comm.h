// A communicator for a group of one rank, without MPI: single-process runs, generation and
// tests use it before (or without) MPI_Init.
#pragma once

#include <memory>
#include <string>

#include "parallel/comm.h"

namespace shardlm {

// A group of one: reductions leave the buffer as is, all_gather/reduce_scatter copy, send/recv
// throw (there is no peer). Touches no MPI, so it works before MPI_Init or without mpirun.
class SelfCommunicator : public Communicator {
 public:
  explicit SelfCommunicator(std::string name = "self") : name_(std::move(name)) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return name_; }

  void all_reduce(void* buf, size_t count, DType dtype, ReduceOp op) override {}
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
  void barrier() override {}
  int ranks_on_my_node() override { return 1; }
  int rank_on_my_node() override { return 0; }
  std::unique_ptr<Communicator> split(int, int, std::string name) override {
    return std::make_unique<SelfCommunicator>(std::move(name));
  }
  uint64_t bytes_sent() const override { return 0; }

 private:
  std::string name_;
};

}  // namespace shardlm
