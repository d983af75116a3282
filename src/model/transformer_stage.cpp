#include "model/transformer_stage.h"

#include "core/error.h"

namespace shardlm {

TransformerStage::TransformerStage(const ModelFamily& family, const StageRequest& r)
    : ModelStage(family, r.cfg, r.shard, r.backend, r.B, r.T, r.flat_capacity, r.storage),
      tp_(r.tp),
      block_acts_(r.recompute, [this](size_t n) { return alloc_floats(n); }),
      requested_slots_(r.slots) {
  SHARDLM_CHECK(r.tp.size() == r.shard.tp_size && r.tp.rank() == r.shard.tp_rank,
                "TP communicator does not match the shard spec");
}

void TransformerStage::allocate_slots() {
  const size_t N = rows(), C = cfg_.n_embd;
  const int n_local = shard().layer_end - shard().layer_begin;
  for (int i = 0; i < requested_slots_; ++i) {
    Slot s;
    if (shard().first_stage) s.tokens = alloc_ids(N);
    for (int l = 0; l <= n_local; ++l) s.resid.push_back(alloc_floats(N * C));  // always kept
    allocate_slot();
    if (shard().last_stage) {
      s.targets = alloc_ids(N);
      s.normed = alloc_floats(N * C);
      s.loss = {alloc_floats(N * static_cast<size_t>(vocab_local_)), alloc_floats(N),
                alloc_floats(2 * N), alloc_floats(N)};
    }
    slots_.push_back(std::move(s));
  }
  dresid_ = alloc_floats(N * C);
  dnorm_ = alloc_floats(N * C);
  if (block_acts_.mode() == Recompute::Full) recompute_out_ = alloc_floats(N * C);
  set_activation_bytes(block_acts_.kept_bytes(), block_acts_.shared_bytes());
}

ActivationFootprint transformer_stage_footprint(const ModelConfig& cfg, const ShardSpec& shard,
                                                int B, int T) {
  const size_t N = static_cast<size_t>(B) * T, C = cfg.n_embd;
  const size_t Vl = cfg.padded_vocab() / shard.tp_size;
  ActivationFootprint f;                         // every buffer is 4-byte f32 or i32
  f.layer_input = 4 * N * C;                     // resid[i]
  f.slot_extra = 4 * N * C;                      // resid[n_local]: the stage output
  if (shard.first_stage) f.slot_extra += 4 * N;  // tokens
  if (shard.last_stage) f.slot_extra += 4 * (N + N * C + N * Vl + 4 * N);  // targets, normed, loss
  f.fixed = 4 * 2 * N * C;                                                 // dresid, dnorm
  f.full_recompute_output = 4 * N * C;                                     // recompute_out_
  return f;
}

const float* TransformerStage::stage_output(int slot) const {
  return slots_.at(static_cast<size_t>(slot)).resid.back();
}
const float* TransformerStage::logits(int slot) const {
  return slots_.at(static_cast<size_t>(slot)).loss.logits;
}

float TransformerStage::forward(int slot, const int32_t* tokens, const int32_t* targets,
                                const float* input) {
  Slot& s = slot_at(slot);
  if (shard().first_stage) {
    upload_ids(s.tokens, tokens, "token");
    embed_forward(s.resid[0], s.tokens);
  } else {
    take_boundary(s.resid[0], input, "the previous stage's activations");
  }
  for (int l = shard().layer_begin; l < shard().layer_end; ++l) {
    const int li = local_layer(l);
    unit_before_use(li);
    block_forward(slot, l, s.resid[li], s.resid[li + 1]);
    unit_after_forward(li);
  }
  if (!shard().last_stage) return 0.0f;
  upload_ids(s.targets, targets, "target");
  final_norm_forward(slot, s.resid.back(), s.normed);
  return vocab_loss_forward(backend(), tp_, s.loss, s.normed, param(head_name()), s.targets, rows(),
                            cfg_.n_embd, vocab_shard());
}

// The head and the cross-entropy, then the final norm: dresid_ = d(stage output).
void TransformerStage::head_backward(Slot& s, int slot, float loss_scale) {
  const int N = rows(), C = cfg_.n_embd;
  vocab_loss_backward(backend(), tp_, s.loss, dnorm_, grad(head_name()), s.normed,
                      param(head_name()), s.targets, loss_scale, N, C, vocab_shard());
  backend().fill_zero(dresid_, static_cast<size_t>(N) * C);
  final_norm_backward(slot, s.resid.back(), dnorm_, dresid_);
}

void TransformerStage::backward(int slot, float loss_scale, const float* output_grad) {
  Slot& s = slot_at(slot);
  if (shard().last_stage) {
    head_backward(s, slot, loss_scale);
  } else {
    take_boundary(dresid_, output_grad, "the gradient of its output");
  }
  for (int l = shard().layer_end - 1; l >= shard().layer_begin; --l) {
    const int li = local_layer(l);
    unit_before_use(li);
    recompute_block(
        block_acts_.mode(), [&] { block_forward(slot, l, s.resid[li], recompute_out_); },
        [&] { block_recompute_selective(slot, l); });
    block_backward(slot, l, s.resid[li], dresid_);
    unit_after_backward(li);
  }
  if (shard().first_stage) embed_backward(dresid_, s.tokens);
}

}  // namespace shardlm
