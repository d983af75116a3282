// A model family's tensor plan: every global parameter tensor, its shape, how tensor
// parallelism splits it, whether AdamW decays it, which pipeline stage holds it, and whether
// the last stage holds a tied copy. ParamLayout turns a plan into one rank's view table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

// Which pipeline stage holds a tensor.
enum class StagePlacement {
  kFirstStage,  // input side: embeddings
  kLayer,       // a transformer block: the stage that runs TensorSpec::layer
  kLastStage,   // output side: final norm, LM head
};

struct TensorSpec {
  std::string name;            // global name, e.g. "h.3.mlp.c_fc.weight"
  std::vector<int64_t> shape;  // global shape
  // The dimension TP ranks split into equal contiguous parts (each rank's block is then one
  // rectangle); kReplicated: every TP rank holds all of it.
  int split_dim = kReplicated;
  bool weight_decay = false;
  StagePlacement placement = StagePlacement::kLayer;
  int layer = -1;  // with kLayer
  // A first-stage tensor that the last stage also uses (GPT-2's wte as the LM head): the last
  // stage holds a copy, and both copies' gradients are summed every step.
  bool tied_to_last_stage = false;

  static constexpr int kReplicated = -1;
};

using TensorPlan = std::vector<TensorSpec>;

// "h.<layer>.<suffix>"
std::string layer_param_name(int layer, const char* suffix);

}  // namespace shardlm
