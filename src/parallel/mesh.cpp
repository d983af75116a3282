#include "parallel/mesh.h"

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

Mesh::Mesh(int tp, int pp) : Mesh(*world_communicator(), tp, pp) {}

Mesh::Mesh(Communicator& base, int tp, int pp) {
  world_rank_ = base.rank();
  set_error_rank(world_rank_);
  // Same inputs on every rank, so every rank throws here alike: no collective is pending yet.
  shape_ = make_mesh_shape(base.size(), tp, pp);
  coord_ = mesh_coord(shape_, world_rank_);
  if (base.size() == 1) {
    world_ = std::make_unique<SelfCommunicator>("world");
    tp_ = std::make_unique<SelfCommunicator>("tp");
    dp_ = std::make_unique<SelfCommunicator>("dp");
    pp_ = std::make_unique<SelfCommunicator>("pp");
    return;
  }
  world_ = base.split(0, world_rank_, "world");  // the mesh's own copy of the group
  // A group is the set of ranks agreeing on the other two coordinates; its own coordinate
  // orders it.
  tp_ = world_->split(coord_.pp * shape_.dp + coord_.dp, coord_.tp, "tp");
  dp_ = world_->split(coord_.pp * shape_.tp + coord_.tp, coord_.dp, "dp");
  pp_ = world_->split(coord_.dp * shape_.tp + coord_.tp, coord_.pp, "pp");
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

}  // namespace shardlm
