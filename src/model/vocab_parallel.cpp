#include "model/vocab_parallel.h"

#include <vector>

namespace shardlm {

std::string vocab_tensor_parallel_problem(const ModelConfig& cfg, int tp) {
  if (cfg.padded_vocab() % tp == 0) return "";
  return "padded vocabulary " + std::to_string(cfg.padded_vocab()) + " (vocab_size " +
         std::to_string(cfg.vocab_size) + " rounded up to a multiple of " +
         std::to_string(cfg.vocab_pad_multiple) + ") is not divisible by tp";
}

void vocab_embedding_forward(KernelBackend& be, TensorParallel& tp, float* out,
                             const int32_t* tokens, const float* table, int N, int C,
                             const VocabShard& v) {
  be.token_embedding_forward(out, tokens, table, N, C, v.start, v.local);
  tp.reduce_from_region(out, static_cast<size_t>(N) * C);
}

float vocab_loss_forward(KernelBackend& be, TensorParallel& tp, VocabLossBuffers& b, const float* x,
                         const float* head, const int32_t* targets, int N, int C,
                         const VocabShard& v) {
  be.matmul_forward(b.logits, x, head, nullptr, N, C, v.local);
  be.xent_row_max(b.row_max, b.logits, N, v.local, v.start, v.vocab_size);
  tp.max_over_vocab(b.row_max, static_cast<size_t>(N));
  be.xent_partial_sums(b.sums, b.sums + N, b.logits, b.row_max, targets, N, v.local, v.start,
                       v.vocab_size);
  tp.sum_over_vocab(b.sums, 2 * static_cast<size_t>(N));
  be.xent_loss(b.losses, b.row_max, b.sums, b.sums + N, N);
  std::vector<float> losses(static_cast<size_t>(N));
  be.copy_to_host(losses.data(), b.losses, losses.size() * sizeof(float));
  double total = 0.0;
  for (float l : losses) total += l;
  return static_cast<float>(total / N);
}

void vocab_loss_backward(KernelBackend& be, TensorParallel& tp, VocabLossBuffers& b, float* dx,
                         float* dhead, const float* x, const float* head, const int32_t* targets,
                         float loss_scale, int N, int C, const VocabShard& v) {
  // d(mean loss)/d(loss_n) = 1/N; dlogits overwrite the logits.
  be.xent_backward(b.logits, b.logits, b.row_max, b.sums, targets,
                   loss_scale / static_cast<float>(N), N, v.local, v.start, v.vocab_size);
  // Partial dx over this rank's vocabulary rows, summed over TP.
  be.matmul_backward(dx, dhead, nullptr, b.logits, x, head, N, C, v.local);
  tp.copy_to_region_backward(dx, static_cast<size_t>(N) * C);
}

}  // namespace shardlm
