#include "parallel/mpi_comm.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/trace.h"

namespace shardlm {

namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return MPI_FLOAT;
    case DType::F64:
      return MPI_DOUBLE;
    case DType::I32:
      return MPI_INT32_T;
    case DType::I64:
      return MPI_INT64_T;
    case DType::U8:
      return MPI_UINT8_T;
    case DType::BF16:
    case DType::F16:
      // Moved as raw 16-bit patterns; MPI has no arithmetic for them (reductions refuse).
      return MPI_UINT16_T;
  }
  fail("MPI communicator: unknown DType value " + std::to_string(static_cast<int>(dtype)));
}

// Reductions need arithmetic MPI has for the type (not for the 16-bit float patterns).
MPI_Datatype mpi_reduce_type(DType dtype, const std::string& comm) {
  if (dtype == DType::BF16 || dtype == DType::F16)
    fail("communicator '" + comm + "': no MPI reduction for " + dtype_name(dtype) +
         " (reduce in f32)");
  return mpi_type(dtype);
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return MPI_SUM;
    case ReduceOp::Max:
      return MPI_MAX;
    case ReduceOp::Min:
      return MPI_MIN;
  }
  fail("MPI communicator: unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

// floor(bytes * (p-1) / p) without overflowing the product: a ring step moves 1/p of the data
// and there are p-1 of them.
uint64_t ring_share(uint64_t bytes, int p) {
  const uint64_t n = static_cast<uint64_t>(p);
  return bytes / n * (n - 1) + bytes % n * (n - 1) / n;
}

// Frees a committed derived datatype even when the call using it throws.
class ScopedType {
 public:
  ScopedType(MPI_Datatype base, int count, MPI_Aint extent) {
    MPI_Datatype block;
    MPI_CHECK(MPI_Type_contiguous(count, base, &block));
    const int rc = MPI_Type_create_resized(block, 0, extent, &type_);
    MPI_Type_free(&block);
    MPI_CHECK(rc);
    const int commit_rc = MPI_Type_commit(&type_);
    if (commit_rc != MPI_SUCCESS) MPI_Type_free(&type_);
    MPI_CHECK(commit_rc);
  }
  ~ScopedType() { MPI_Type_free(&type_); }
  ScopedType(const ScopedType&) = delete;
  ScopedType& operator=(const ScopedType&) = delete;
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

}  // namespace

std::vector<Chunk> split_into_chunks(size_t count, size_t max_chunk) {
  SHARDLM_CHECK(max_chunk >= 1 && max_chunk <= static_cast<size_t>(INT_MAX),
                "chunk size " + std::to_string(max_chunk) + " must be in [1, INT_MAX]");
  std::vector<Chunk> chunks;
  chunks.reserve(count / max_chunk + 1);
  for (size_t offset = 0; offset < count; offset += max_chunk)
    chunks.push_back({offset, static_cast<int>(std::min(max_chunk, count - offset))});
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// MpiCommunicator

MpiCommunicator::MpiCommunicator(MPI_Comm parent, std::string name) : name_(std::move(name)) {
  MPI_CHECK(MPI_Comm_dup(parent, &comm_));
  init_after_create();
}

MpiCommunicator::MpiCommunicator(Adopt, MPI_Comm owned, std::string name)
    : comm_(owned), name_(std::move(name)) {
  init_after_create();
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(MPI_Comm parent, int color, int key,
                                                        std::string name) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(parent, color, key, &comm));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(Adopt{}, comm, std::move(name)));
}

void MpiCommunicator::init_after_create() {
  try {
    MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
  } catch (...) {
    MPI_Comm_free(&comm_);  // the destructor does not run for a half-built object
    throw;
  }
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // Freeing after MPI_Finalize is erroneous; a destructor cannot report a failure anyway.
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::set_max_chunk_elements(size_t max_chunk) {
  SHARDLM_CHECK(max_chunk >= 1 && max_chunk <= static_cast<size_t>(INT_MAX),
                name_ + ": max chunk " + std::to_string(max_chunk) + " must be in [1, INT_MAX]");
  max_chunk_ = max_chunk;
}

size_t MpiCommunicator::max_block_chunk() const {
  return std::max<size_t>(1, max_chunk_ / static_cast<size_t>(size_));
}

void MpiCommunicator::check_peer(int peer, const char* what) const {
  if (peer < 0 || peer >= size_)
    fail("communicator '" + name_ + "': " + what + " rank " + std::to_string(peer) +
         " is outside the group of " + std::to_string(size_) + " ranks");
}

void MpiCommunicator::all_reduce(void* buf, size_t count, DType dtype, ReduceOp op) {
  const trace::Span span("all_reduce", trace::Kind::Comm, count * dtype_size(dtype), -1,
                         name_.c_str());
  const size_t es = dtype_size(dtype);
  char* bytes = static_cast<char*>(buf);
  for (const Chunk& c : split_into_chunks(count, max_chunk_))
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, bytes + c.offset * es, c.count,
                            mpi_reduce_type(dtype, name_), mpi_op(op), comm_));
  bytes_sent_ += ring_share(2 * count * es, size_);
}

void MpiCommunicator::reduce_scatter(const void* send, void* recv, size_t recv_count, DType dtype,
                                     ReduceOp op) {
  const trace::Span span("reduce_scatter", trace::Kind::Comm,
                         size_ * recv_count * dtype_size(dtype), -1, name_.c_str());
  const size_t es = dtype_size(dtype);
  const size_t p = static_cast<size_t>(size_);
  const char* in = static_cast<const char*>(send);
  char* out = static_cast<char*>(recv);
  const auto in_addr = reinterpret_cast<uintptr_t>(in);
  const auto out_addr = reinterpret_cast<uintptr_t>(out);
  if (recv_count > 0 && out_addr < in_addr + p * recv_count * es &&
      in_addr < out_addr + recv_count * es)
    fail("communicator '" + name_ + "': reduce_scatter send and recv buffers overlap");

  const size_t block_limit = max_block_chunk();
  if (recv_count <= block_limit) {
    MPI_CHECK(MPI_Reduce_scatter_block(send, recv, static_cast<int>(recv_count),
                                       mpi_reduce_type(dtype, name_), mpi_op(op), comm_));
  } else {
    // Block r's piece [offset, offset+n) is not contiguous with block r+1's, so gather the
    // pieces into one contiguous buffer per call (at most max_chunk_ elements).
    std::vector<char> packed(p * block_limit * es);
    for (const Chunk& c : split_into_chunks(recv_count, block_limit)) {
      const size_t piece = static_cast<size_t>(c.count) * es;
      for (size_t r = 0; r < p; ++r)
        std::memcpy(packed.data() + r * piece, in + (r * recv_count + c.offset) * es, piece);
      MPI_CHECK(MPI_Reduce_scatter_block(packed.data(), out + c.offset * es, c.count,
                                         mpi_reduce_type(dtype, name_), mpi_op(op), comm_));
    }
  }
  bytes_sent_ += ring_share(p * recv_count * es, size_);
}

void MpiCommunicator::all_gather(const void* send, void* recv, size_t send_count, DType dtype) {
  const trace::Span span("all_gather", trace::Kind::Comm, size_ * send_count * dtype_size(dtype),
                         -1, name_.c_str());
  const size_t es = dtype_size(dtype);
  const char* in = static_cast<const char*>(send);
  char* out = static_cast<char*>(recv);
  const size_t block_limit = max_block_chunk();
  if (send_count <= block_limit) {
    const int n = static_cast<int>(send_count);
    MPI_CHECK(MPI_Allgather(send, n, mpi_type(dtype), recv, n, mpi_type(dtype), comm_));
  } else {
    // Receive each rank's piece through a type whose extent is one whole block, so piece r
    // lands at block r + offset without a staging copy.
    for (const Chunk& c : split_into_chunks(send_count, block_limit)) {
      ScopedType strided(mpi_type(dtype), c.count, static_cast<MPI_Aint>(send_count * es));
      MPI_CHECK(MPI_Allgather(in + c.offset * es, c.count, mpi_type(dtype), out + c.offset * es, 1,
                              strided.get(), comm_));
    }
  }
  bytes_sent_ += ring_share(static_cast<size_t>(size_) * send_count * es, size_);
}

namespace {
// The part of every rank's block that lies in the window [w0, w1) of the concatenated blocks:
// per-rank counts and displacements (within the window), and where this rank's part starts
// inside its own block.
struct VWindow {
  std::vector<int> counts, displs;
  size_t mine_from = 0;
};
VWindow v_window(const std::vector<size_t>& counts, int rank, size_t w0, size_t w1) {
  VWindow w;
  size_t d = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    const size_t lo = std::max(d, w0), hi = std::min(d + counts[r], w1);
    w.counts.push_back(hi > lo ? static_cast<int>(hi - lo) : 0);
    w.displs.push_back(hi > lo ? static_cast<int>(lo - w0) : 0);
    if (static_cast<int>(r) == rank) w.mine_from = hi > lo ? lo - d : 0;
    d += counts[r];
  }
  return w;
}

// The elements of a v-collective's blocks, one count per rank (checked).
size_t v_total(const std::vector<size_t>& counts, int size, const std::string& name,
               const char* op) {
  SHARDLM_CHECK(counts.size() == static_cast<size_t>(size),
                "communicator '" + name + "': " + op + " needs one count per rank");
  size_t total = 0;
  for (const size_t c : counts) total += c;
  return total;
}
}  // namespace

void MpiCommunicator::reduce_scatter_v(const void* send, void* recv,
                                       const std::vector<size_t>& counts, DType dtype,
                                       ReduceOp op) {
  const size_t total = v_total(counts, size_, name_, "reduce_scatter_v");
  const size_t es = dtype_size(dtype);
  // Windows of at most max_chunk_ elements of the concatenated blocks keep MPI's int counts.
  for (const Chunk& c : split_into_chunks(total, max_chunk_)) {
    const VWindow w = v_window(counts, rank_, c.offset, c.offset + static_cast<size_t>(c.count));
    char* out = static_cast<char*>(recv) + w.mine_from * es;
    MPI_CHECK(MPI_Reduce_scatter(static_cast<const char*>(send) + c.offset * es, out,
                                 w.counts.data(), mpi_reduce_type(dtype, name_), mpi_op(op),
                                 comm_));
  }
  bytes_sent_ += ring_share(total * es, size_);
}

void MpiCommunicator::all_gather_v(const void* send, void* recv, const std::vector<size_t>& counts,
                                   DType dtype) {
  const size_t total = v_total(counts, size_, name_, "all_gather_v");
  const size_t es = dtype_size(dtype);
  for (const Chunk& c : split_into_chunks(total, max_chunk_)) {
    const VWindow w = v_window(counts, rank_, c.offset, c.offset + static_cast<size_t>(c.count));
    const char* in = static_cast<const char*>(send) + w.mine_from * es;
    const int n = w.counts[static_cast<size_t>(rank_)];
    MPI_CHECK(MPI_Allgatherv(in, n, mpi_type(dtype), static_cast<char*>(recv) + c.offset * es,
                             w.counts.data(), w.displs.data(), mpi_type(dtype), comm_));
  }
  bytes_sent_ += ring_share(total * es, size_);
}

void MpiCommunicator::broadcast(void* buf, size_t count, DType dtype, int root) {
  const trace::Span span("broadcast", trace::Kind::Comm, count * dtype_size(dtype), root,
                         name_.c_str());
  check_peer(root, "broadcast root");
  const size_t es = dtype_size(dtype);
  char* bytes = static_cast<char*>(buf);
  for (const Chunk& c : split_into_chunks(count, max_chunk_))
    MPI_CHECK(MPI_Bcast(bytes + c.offset * es, c.count, mpi_type(dtype), root, comm_));
  if (rank_ == root && size_ > 1) bytes_sent_ += count * es;
}

void MpiCommunicator::send(const void* buf, size_t count, DType dtype, int dst, int tag) {
  const trace::Span span("send", trace::Kind::Comm, count * dtype_size(dtype), dst, name_.c_str());
  check_peer(dst, "send to");
  const size_t es = dtype_size(dtype);
  const char* bytes = static_cast<const char*>(buf);
  // Messages with the same (source, tag) do not overtake each other, so chunks arrive in order.
  for (const Chunk& c : split_into_chunks(count, max_chunk_))
    MPI_CHECK(MPI_Send(bytes + c.offset * es, c.count, mpi_type(dtype), dst, tag, comm_));
  bytes_sent_ += count * es;
}

void MpiCommunicator::check_received(const MPI_Status& status, const Chunk& chunk, DType dtype,
                                     int src, int tag) const {
  int received = 0;
  MPI_CHECK(MPI_Get_count(&status, mpi_type(dtype), &received));
  // A shorter message is not an MPI error, but it would leave the buffer partly stale.
  if (received != chunk.count)
    fail("communicator '" + name_ + "': recv from rank " + std::to_string(src) + " tag " +
         std::to_string(tag) + " expected " + std::to_string(chunk.count) + " elements at offset " +
         std::to_string(chunk.offset) + " but got " + std::to_string(received));
}

void MpiCommunicator::recv(void* buf, size_t count, DType dtype, int src, int tag) {
  const trace::Span span("recv", trace::Kind::Comm, count * dtype_size(dtype), src, name_.c_str());
  check_peer(src, "recv from");
  const size_t es = dtype_size(dtype);
  char* bytes = static_cast<char*>(buf);
  for (const Chunk& c : split_into_chunks(count, max_chunk_)) {
    MPI_Status status;
    MPI_CHECK(MPI_Recv(bytes + c.offset * es, c.count, mpi_type(dtype), src, tag, comm_, &status));
    check_received(status, c, dtype, src, tag);
  }
}

void MpiCommunicator::send_recv(const void* send_buf, size_t send_count, int dst, int send_tag,
                                void* recv_buf, size_t recv_count, int src, int recv_tag,
                                DType dtype) {
  const trace::Span span("send_recv", trace::Kind::Comm,
                         (send_count + recv_count) * dtype_size(dtype), dst, name_.c_str());
  check_peer(dst, "send to");
  check_peer(src, "recv from");
  const size_t es = dtype_size(dtype);
  const char* out = static_cast<const char*>(send_buf);
  char* in = static_cast<char*>(recv_buf);
  // Both directions advance in lock step; the longer side finishes with plain sends or recvs,
  // which its peer, running the same loop with the counts swapped, matches one for one.
  const std::vector<Chunk> sends = split_into_chunks(send_count, max_chunk_);
  const std::vector<Chunk> recvs = split_into_chunks(recv_count, max_chunk_);
  const size_t both = std::min(sends.size(), recvs.size());
  for (size_t i = 0; i < both; ++i) {
    MPI_Status status;
    MPI_CHECK(MPI_Sendrecv(out + sends[i].offset * es, sends[i].count, mpi_type(dtype), dst,
                           send_tag, in + recvs[i].offset * es, recvs[i].count, mpi_type(dtype),
                           src, recv_tag, comm_, &status));
    check_received(status, recvs[i], dtype, src, recv_tag);
  }
  for (size_t i = both; i < sends.size(); ++i)
    MPI_CHECK(MPI_Send(out + sends[i].offset * es, sends[i].count, mpi_type(dtype), dst, send_tag,
                       comm_));
  for (size_t i = both; i < recvs.size(); ++i) {
    MPI_Status status;
    MPI_CHECK(MPI_Recv(in + recvs[i].offset * es, recvs[i].count, mpi_type(dtype), src, recv_tag,
                       comm_, &status));
    check_received(status, recvs[i], dtype, src, recv_tag);
  }
  bytes_sent_ += send_count * es;
}

int MpiCommunicator::ranks_on_my_node() {
  return node_query(MPI_Comm_size);
}

int MpiCommunicator::rank_on_my_node() {
  return node_query(MPI_Comm_rank);
}

int MpiCommunicator::node_query(int (*query)(MPI_Comm, int*)) {
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  int n = 0;
  const int rc = query(node, &n);
  MPI_Comm_free(&node);
  MPI_CHECK(rc);
  return n;
}

void MpiCommunicator::barrier() {
  const trace::Span span("barrier", trace::Kind::Comm, 0, -1, name_.c_str());
  MPI_CHECK(MPI_Barrier(comm_));
}

std::unique_ptr<Communicator> world_communicator() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  int size = 1;
  if (initialised && !finalised) MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size == 1) return std::make_unique<SelfCommunicator>("world");
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
}

}  // namespace shardlm
