// The 3D process mesh (docs/design.md, docs/parallelism.md): TP varies fastest, then DP, then PP,
// so
//   world_rank = pp_rank * (dp * tp) + dp_rank * tp + tp_rank
// and a TP group is tp consecutive world ranks (inside one node when tp <= ranks per node).
// Every group's communicator is made once, at construction.
#pragma once

#include <memory>
#include <string>

#include "parallel/comm.h"
#include "parallel/mpi_runtime.h"

namespace shardlm {

struct MeshShape {
  int dp = 1;
  int tp = 1;
  int pp = 1;
  int world_size() const { return dp * tp * pp; }
};

struct MeshCoord {
  int pp = 0;
  int dp = 0;
  int tp = 0;
};

// Checks tp >= 1, pp >= 1 and world_size % (tp * pp) == 0 (throws naming tp, pp and the world
// size otherwise) and returns the shape with dp = world_size / (tp * pp).
MeshShape make_mesh_shape(int world_size, int tp, int pp);
MeshCoord mesh_coord(const MeshShape& shape, int world_rank);
int mesh_world_rank(const MeshShape& shape, const MeshCoord& coord);

class Mesh {
 public:
  // Collective over MPI_COMM_WORLD. Without MPI (not initialised) or with one rank, every
  // group is a SelfCommunicator. Records world_rank for error messages (set_error_rank).
  Mesh(int tp, int pp);
  // The same over the ranks of `base` only (e.g. the first N ranks of a larger test job); its
  // rank 0 is the mesh's world rank 0. Collective over `base`, which stays the caller's.
  Mesh(Communicator& base, int tp, int pp);
  // A 1 x 1 x 1 mesh of this process alone (SelfCommunicators), even inside an MPI job: for
  // computing single-rank references next to a parallel run.
  static std::unique_ptr<Mesh> single_process();

  int world_rank() const { return world_rank_; }
  int world_size() const { return shape_.world_size(); }
  int tp_rank() const { return coord_.tp; }
  int dp_rank() const { return coord_.dp; }
  int pp_rank() const { return coord_.pp; }
  const MeshShape& sizes() const { return shape_; }

  Communicator& world() { return *world_; }
  Communicator& tp() { return *tp_; }
  Communicator& dp() { return *dp_; }
  Communicator& pp() { return *pp_; }

  // "rank 5 = (pp 1, dp 0, tp 1) of pp2 x dp2 x tp2"
  std::string describe() const;

 private:
  Mesh() = default;
  MeshShape shape_;
  MeshCoord coord_;
  int world_rank_ = 0;
  std::unique_ptr<Communicator> world_, tp_, dp_, pp_;
};

}  // namespace shardlm
