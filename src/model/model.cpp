#include "model/model.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace shardlm {

namespace {
// Refuses bad shapes before anything is allocated; returns `shard` for the initializer list.
const ShardSpec& checked(const ModelFamily& family, const ModelConfig& cfg, const ShardSpec& shard,
                         int B, int T) {
  cfg.validate();
  if (B <= 0) fail("micro-batch size must be > 0, got " + std::to_string(B));
  if (T <= 0) fail("sequence length must be > 0, got " + std::to_string(T));
  if (T > cfg.max_seq_len)
    fail("sequence length " + std::to_string(T) + " is longer than the model's max_seq_len " +
         std::to_string(cfg.max_seq_len));
  const std::string problem = family.tensor_parallel_problem(cfg, shard.tp_size);
  if (!problem.empty()) fail(problem + " " + std::to_string(shard.tp_size));
  return shard;
}
}  // namespace

ModelStage::ModelStage(const ModelFamily& family, const ModelConfig& cfg, const ShardSpec& shard,
                       KernelBackend& backend, int B, int T, size_t flat_capacity,
                       const StageStorage& storage)
    : family_(family),
      cfg_(cfg),
      weights_(family, cfg, checked(family, cfg, shard, B, T), backend, flat_capacity,
               /*with_grads=*/true, storage),
      B_(B),
      T_(T) {
  vocab_local_ = cfg.padded_vocab() / shard.tp_size;
  vocab_start_ = vocab_local_ * shard.tp_rank;
}

ModelStage::~ModelStage() {
  for (void* p : owned_) backend().free_memory(p);
}

float* ModelStage::alloc_floats(size_t n) {
  float* p = backend().alloc_floats(n, MemoryRole::Activations);
  owned_.push_back(p);
  return p;
}

int32_t* ModelStage::alloc_ids(size_t n) {
  int32_t* p = backend().alloc_ints(n, MemoryRole::Activations);
  owned_.push_back(p);
  return p;
}

void ModelStage::upload_ids(int32_t* dst, const int32_t* ids, const char* what) {
  SHARDLM_CHECK(ids != nullptr, std::string("this stage needs ") + what + " ids");
  check_ids(ids, what);
  backend().copy_from_host(dst, ids, tokens_per_micro_batch() * sizeof(int32_t));
}

void ModelStage::take_boundary(float* dst, const float* from, const char* what) {
  SHARDLM_CHECK(from != nullptr, std::string("this stage needs ") + what);
  backend().copy(dst, from, boundary_numel() * sizeof(float));
}

void ModelStage::check_ids(const int32_t* ids, const char* what) const {
  const size_t N = tokens_per_micro_batch();
  for (size_t i = 0; i < N; ++i) {
    if (ids[i] < 0 || ids[i] >= cfg_.vocab_size)
      fail(std::string(what) + " id " + std::to_string(ids[i]) + " at position " +
           std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) +
           ")");
  }
}

std::unique_ptr<ModelStage> make_model_stage(const ModelConfig& cfg, const ShardSpec& shard,
                                             KernelBackend& backend, Communicator& tp, int B, int T,
                                             int slots, size_t flat_capacity, Recompute recompute,
                                             const StageStorage& storage) {
  return model_family(cfg.family)
      .make_stage({cfg, shard, backend, tp, B, T, slots, flat_capacity, recompute, storage});
}

}  // namespace shardlm
