#include "parallel/self_comm.h"

#include <cstring>

#include "core/error.h"

namespace shardlm {

void SelfCommunicator::reduce_scatter(const void* send, void* recv, size_t recv_count, DType dtype,
                                      ReduceOp op) {
  if (recv_count > 0 && send != recv) std::memmove(recv, send, recv_count * dtype_size(dtype));
}

void SelfCommunicator::all_gather(const void* send, void* recv, size_t send_count, DType dtype) {
  if (send_count > 0 && send != recv) std::memmove(recv, send, send_count * dtype_size(dtype));
}

void SelfCommunicator::reduce_scatter_v(const void* send, void* recv,
                                        const std::vector<size_t>& counts, DType dtype,
                                        ReduceOp op) {
  SHARDLM_CHECK(counts.size() == 1, "communicator '" + name_ + "': reduce_scatter_v needs 1 count");
  reduce_scatter(send, recv, counts[0], dtype, op);
}

void SelfCommunicator::all_gather_v(const void* send, void* recv, const std::vector<size_t>& counts,
                                    DType dtype) {
  SHARDLM_CHECK(counts.size() == 1, "communicator '" + name_ + "': all_gather_v needs 1 count");
  all_gather(send, recv, counts[0], dtype);
}

void SelfCommunicator::broadcast(void* buf, size_t count, DType dtype, int root) {
  if (root != 0)
    fail("communicator '" + name_ + "': broadcast root " + std::to_string(root) +
         " is outside the group of 1 rank");
}

void SelfCommunicator::send(const void* buf, size_t count, DType dtype, int dst, int tag) {
  fail("communicator '" + name_ + "' has a single rank: cannot send to rank " +
       std::to_string(dst));
}

void SelfCommunicator::recv(void* buf, size_t count, DType dtype, int src, int tag) {
  fail("communicator '" + name_ + "' has a single rank: cannot recv from rank " +
       std::to_string(src));
}

void SelfCommunicator::send_recv(const void* send_buf, size_t send_count, int dst, int send_tag,
                                 void* recv_buf, size_t recv_count, int src, int recv_tag,
                                 DType dtype) {
  fail("communicator '" + name_ + "' has a single rank: cannot exchange with rank " +
       std::to_string(dst));
}

}  // namespace shardlm
