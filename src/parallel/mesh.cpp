#include "parallel/mesh.h"

#include <mpi.h>

#include "core/error.h"
#include "parallel/mpi_comm.h"

namespace shardlm {

MeshShape make_mesh_shape(int world_size, int tp, int pp) {
  const std::string given = "tp=" + std::to_string(tp) + ", pp=" + std::to_string(pp) +
                            ", world size " + std::to_string(world_size);
  if (tp < 1 || pp < 1) fail("invalid mesh (" + given + "): tp and pp must be at least 1");
  if (world_size < 1 || world_size % (tp * pp) != 0)
    fail("invalid mesh (" + given + "): the world size must be a multiple of tp*pp = " +
         std::to_string(tp * pp) + " (dp = world / (tp*pp))");
  return MeshShape{world_size / (tp * pp), tp, pp};
}

MeshCoord mesh_coord(const MeshShape& shape, int world_rank) {
  SHARDLM_CHECK(world_rank >= 0 && world_rank < shape.world_size(),
                "world rank " + std::to_string(world_rank) + " outside a mesh of " +
                    std::to_string(shape.world_size()) + " ranks");
  const int tp_dp = shape.tp * shape.dp;
  return MeshCoord{world_rank / tp_dp, (world_rank % tp_dp) / shape.tp, world_rank % shape.tp};
}

int mesh_world_rank(const MeshShape& shape, const MeshCoord& coord) {
  return coord.pp * (shape.dp * shape.tp) + coord.dp * shape.tp + coord.tp;
}

Mesh::Mesh(int tp, int pp) : Mesh(MPI_COMM_NULL, tp, pp) {}

Mesh::Mesh(MPI_Comm base, int tp, int pp) {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  const bool use_mpi = initialised && !finalised;
  if (use_mpi && base == MPI_COMM_NULL) base = MPI_COMM_WORLD;
  int world_size = 1;
  if (use_mpi) {
    MPI_CHECK(MPI_Comm_rank(base, &world_rank_));
    MPI_CHECK(MPI_Comm_size(base, &world_size));
  }
  set_error_rank(world_rank_);
  // Same inputs on every rank, so every rank throws here alike: no collective is pending yet.
  shape_ = make_mesh_shape(world_size, tp, pp);
  coord_ = mesh_coord(shape_, world_rank_);
  if (world_size == 1) {
    world_ = std::make_unique<SelfCommunicator>("world");
    tp_ = std::make_unique<SelfCommunicator>("tp");
    dp_ = std::make_unique<SelfCommunicator>("dp");
    pp_ = std::make_unique<SelfCommunicator>("pp");
    return;
  }
  auto world = std::make_unique<MpiCommunicator>(base, "world");
  const MPI_Comm w = world->handle();
  // A group is the set of ranks agreeing on the other two coordinates; its own coordinate
  // orders it.
  tp_ = MpiCommunicator::split(w, coord_.pp * shape_.dp + coord_.dp, coord_.tp, "tp");
  dp_ = MpiCommunicator::split(w, coord_.pp * shape_.tp + coord_.tp, coord_.dp, "dp");
  pp_ = MpiCommunicator::split(w, coord_.dp * shape_.tp + coord_.tp, coord_.pp, "pp");
  world_ = std::move(world);
}

std::unique_ptr<Mesh> Mesh::single_process() {
  std::unique_ptr<Mesh> mesh(new Mesh());
  mesh->shape_ = MeshShape{1, 1, 1};
  mesh->world_ = std::make_unique<SelfCommunicator>("world");
  mesh->tp_ = std::make_unique<SelfCommunicator>("tp");
  mesh->dp_ = std::make_unique<SelfCommunicator>("dp");
  mesh->pp_ = std::make_unique<SelfCommunicator>("pp");
  return mesh;
}

std::string Mesh::describe() const {
  return "rank " + std::to_string(world_rank_) + " = (pp " + std::to_string(coord_.pp) + ", dp " +
         std::to_string(coord_.dp) + ", tp " + std::to_string(coord_.tp) + ") of pp" +
         std::to_string(shape_.pp) + " x dp" + std::to_string(shape_.dp) + " x tp" +
         std::to_string(shape_.tp);
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialised = 0;
  MPI_CHECK(MPI_Initialized(&initialised));
  if (initialised) return;
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    fail("MPI provides thread level " + std::to_string(provided) +
         ", below MPI_THREAD_FUNNELED, which OpenMP kernels next to MPI calls need");
  }
  initialised_here_ = true;
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

MpiRuntime::~MpiRuntime() {
  if (!initialised_here_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

}  // namespace shardlm
