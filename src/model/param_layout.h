// The view table: every parameter tensor a rank owns, where it sits in the rank's flat buffers
// (parameters, gradients, AdamW moments and master weights all share this ordering), and which
// rectangle of the global tensor it is. Optimizer, DP reductions and checkpoints work on flat
// ranges; this table is what lets a checkpoint load into another layout.
//
// Global layouts (PyTorch Linear convention, weight = [out, in]; y = x W^T + b):
//   wte                      [Vp, C]          vocab-parallel: TP rank r owns rows r*Vp/tp..
//   wpe                      [max_seq, C]     replicated over TP
//   h.L.ln_1.weight/bias     [C]              replicated
//   h.L.attn.c_attn.weight   [3, H, hd, C]    column-parallel over heads: rank owns H/tp heads
//   h.L.attn.c_attn.bias     [3, H, hd]       (q rows of all heads, then k, then v)
//   h.L.attn.c_proj.weight   [C, C]           row-parallel: rank owns columns r*C/tp..
//   h.L.attn.c_proj.bias     [C]              replicated
//   h.L.ln_2.weight/bias     [C]              replicated
//   h.L.mlp.c_fc.weight      [4C, C]          column-parallel: rank owns rows r*4C/tp..
//   h.L.mlp.c_fc.bias        [4C]
//   h.L.mlp.c_proj.weight    [C, 4C]          row-parallel: rank owns columns r*4C/tp..
//   h.L.mlp.c_proj.bias      [C]              replicated
//   ln_f.weight/bias         [C]              replicated
// With pipeline parallelism the first stage holds wte and wpe, the last stage ln_f and a copy
// of wte (tied LM head); when first == last there is one copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace shardlm {

// What one rank owns of the model: its TP coordinate and its pipeline stage's layer range.
struct ShardSpec {
  int tp_rank = 0;
  int tp_size = 1;
  int layer_begin = 0;  // first block this stage runs
  int layer_end = 0;    // one past the last block
  bool first_stage = true;
  bool last_stage = true;
  static ShardSpec whole_model(const ModelConfig& cfg) {
    ShardSpec s;
    s.layer_end = cfg.n_layer;
    return s;
  }
};

struct TensorView {
  std::string name;                   // global tensor name
  std::vector<int64_t> global_shape;  // full tensor
  std::vector<int64_t> local_shape;   // this rank's block
  std::vector<int64_t> offset;        // block's corner in the global tensor
  size_t flat_offset = 0;             // elements from the start of the flat buffer
  size_t numel = 0;                   // elements of the local block
  bool tp_replicated = false;         // every TP rank holds the whole tensor
  bool weight_decay = false;          // AdamW decay: rank >= 2 tensors that are not biases
  // This rank's copy is the one that counts: in the global grad norm and in checkpoints.
  // False for TP-replicated tensors on tp_rank > 0 and for the last stage's copy of wte.
  bool primary = true;
};

class ParamLayout {
 public:
  ParamLayout() = default;
  ParamLayout(const ModelConfig& cfg, const ShardSpec& shard);

  const std::vector<TensorView>& views() const { return views_; }
  size_t total() const { return total_; }  // elements of the flat buffer
  // Throws if this rank does not own `name`.
  const TensorView& get(const std::string& name) const;
  const TensorView* find(const std::string& name) const;
  const ShardSpec& shard() const { return shard_; }

  // Flat buffers are padded so that every tensor starts on a 64-byte boundary.
  static constexpr size_t kAlign = 16;

 private:
  void add(const std::string& name, std::vector<int64_t> global_shape, int split_dim,
           bool replicated, bool primary = true);
  std::vector<TensorView> views_;
  size_t total_ = 0;
  ShardSpec shard_;
};

// "h.<layer>.<suffix>"
std::string layer_param_name(int layer, const char* suffix);

}  // namespace shardlm
