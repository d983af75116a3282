// Full optimizer steps (forward, backward, grad norm, AdamW) of one process on synthetic tokens:
// tokens/s, achieved model GFLOP/s (ModelFamily::flops_per_token) and % of the FMA peak measured in
// the same program, then where the step's time goes, op family by op family.
//   usage: bench_train_step [--model PRESET] [--seq-len T] [--micro-batch B] [--steps N]
//                           [--warmup-steps W] [--peak-gflops X]
// Threads: OMP_NUM_THREADS. The "config:" and "result:" lines are key=value for scripts
// (bench/compare_pytorch.sh reads them).
//
// The breakdown comes from a KernelBackend that forwards every call to the CPU backend and
// times it (kernels run synchronously on the calling thread's OpenMP team, so wall time per
// call is the kernel's time); two clock reads per call against steps of 100+ ms cost nothing
// measurable. "outside kernels" is the rest of the step: the trainer's own host code.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_args.h"
#include "core/clock.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "kernels/backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/peak_flops.h"
#include "model/config.h"
#include "model/family.h"
#include "parallel/mesh.h"
#include "train/trainer.h"

namespace {

using shardlm::KernelBackend;

struct Options {
  std::string model = "mini";
  int seq_len = 256;
  int micro_batch = 8;
  int steps = 5;
  int warmup_steps = 2;
  double peak_gflops = 0.0;  // 0: measure
};

// nullopt for --help; throws naming the flag on anything else it cannot read.
std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  shardlm::bench::Flags flags(
      "usage: bench_train_step [--model PRESET] [--seq-len T] [--micro-batch B] [--steps N]\n"
      "                        [--warmup-steps W] [--peak-gflops X]");
  flags.add("model", &o.model)
      .add("seq-len", &o.seq_len)
      .add("micro-batch", &o.micro_batch)
      .add("steps", &o.steps)
      .add("warmup-steps", &o.warmup_steps)
      .add("peak-gflops", &o.peak_gflops);
  if (!flags.parse(argc, argv)) {
    std::printf("%s\n", flags.usage().c_str());
    return std::nullopt;
  }
  if (o.steps < 1) shardlm::fail("--steps must be >= 1, got " + std::to_string(o.steps));
  if (o.warmup_steps < 0)
    shardlm::fail("--warmup-steps must be >= 0, got " + std::to_string(o.warmup_steps));
  return o;
}

struct OpStats {
  double seconds = 0.0;
  double cpu_seconds = 0.0;  // process CPU time (all threads)
  double flops = 0.0;        // matmul and attention only
  long calls = 0;
};

// Forwards every call to `inner`, adding its wall time (and, for matmuls and attention, its
// FLOPs) to a named op family while `enabled`.
class TimingBackend final : public KernelBackend {
 public:
  TimingBackend(KernelBackend& inner, const shardlm::ModelConfig& cfg) : inner_(inner), cfg_(cfg) {}

  bool enabled = false;
  const std::map<std::string, OpStats>& stats() const { return stats_; }

  const char* name() const override { return inner_.name(); }

  // The inner backend's account sees every buffer too (as workspace: the roles are this
  // wrapper's).
  void* allocate_bytes(size_t bytes) override { return inner_.alloc(bytes, shardlm::DType::U8); }
  void release_bytes(void* p) override { inner_.free_memory(p); }
  void copy_from_host(void* dst, const void* src_host, size_t bytes) override {
    timed("memory (copy, zero)", 0, [&] { inner_.copy_from_host(dst, src_host, bytes); });
  }
  void copy_to_host(void* dst_host, const void* src, size_t bytes) override {
    timed("memory (copy, zero)", 0, [&] { inner_.copy_to_host(dst_host, src, bytes); });
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    timed("memory (copy, zero)", 0, [&] { inner_.copy(dst, src, bytes); });
  }
  void fill_zero(float* p, size_t n) override {
    timed("memory (copy, zero)", 0, [&] { inner_.fill_zero(p, n); });
  }
  void synchronize() override { inner_.synchronize(); }
  bool host_memory() const override { return inner_.host_memory(); }

  void token_embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C,
                               int vocab_start, int Vl) override {
    timed("embedding fwd", 0,
          [&] { inner_.token_embedding_forward(out, tokens, wte, N, C, vocab_start, Vl); });
  }
  void token_embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C,
                                int vocab_start, int Vl) override {
    timed("embedding bwd", 0,
          [&] { inner_.token_embedding_backward(dwte, dout, tokens, N, C, vocab_start, Vl); });
  }
  void position_embedding_forward(float* out, const float* wpe, int B, int T, int C) override {
    timed("embedding fwd", 0, [&] { inner_.position_embedding_forward(out, wpe, B, T, C); });
  }
  void position_embedding_backward(float* dwpe, const float* dout, int B, int T, int C) override {
    timed("embedding bwd", 0, [&] { inner_.position_embedding_backward(dwpe, dout, B, T, C); });
  }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int N, int C) override {
    timed("layernorm fwd", 0,
          [&] { inner_.layernorm_forward(out, mean, rstd, inp, weight, bias, N, C); });
  }
  void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, const float* mean,
                          const float* rstd, int N, int C) override {
    timed("layernorm bwd", 0, [&] {
      inner_.layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    });
  }

  void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                       float eps) override {
    timed("rmsnorm fwd", 0, [&] { inner_.rmsnorm_forward(out, rstd, inp, weight, N, C, eps); });
  }
  void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                        const float* weight, const float* rstd, int N, int C) override {
    timed("rmsnorm bwd", 0,
          [&] { inner_.rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C); });
  }

  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override {
    timed("matmul fwd " + matmul_layer(C, OC), 2.0 * N * C * OC,
          [&] { inner_.matmul_forward(out, inp, weight, bias, N, C, OC); });
  }
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override {
    const double products = dinp != nullptr ? 2.0 : 1.0;  // dinp and dweight, or dweight alone
    timed("matmul bwd " + matmul_layer(C, OC), products * 2.0 * N * C * OC,
          [&] { inner_.matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC); });
  }

  // FLOPs of the causal half of the T x T products, as in ModelFamily::flops_per_token: q@k^T and
  // att@v forward, twice that backward.
  void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int NH,
                         int hd) override {
    timed("attention fwd", 2.0 * B * NH * T * T * hd,
          [&] { inner_.attention_forward(out, lse, qkv, B, T, NH, hd); });
  }
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* lse, int B, int T, int NH, int hd) override {
    timed("attention bwd", 4.0 * B * NH * T * T * hd,
          [&] { inner_.attention_backward(dqkv, dout, qkv, out, lse, B, T, NH, hd); });
  }

  void kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq, int NH,
                       int hd, int max_seq) override {
    inner_.kv_cache_append(k_cache, v_cache, qkv, pos0, Tq, NH, hd, max_seq);
  }
  void attention_decode(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                        int pos0, int Tq, int NH, int hd, int max_seq) override {
    inner_.attention_decode(out, qkv, k_cache, v_cache, pos0, Tq, NH, hd, max_seq);
  }

  void rope_forward(float* qkv, const float* cos, const float* sin, int B, int T, int pos0, int KV,
                    int g, int hd) override {
    timed("rope fwd", 0, [&] { inner_.rope_forward(qkv, cos, sin, B, T, pos0, KV, g, hd); });
  }
  void rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T, int pos0,
                     int KV, int g, int hd) override {
    timed("rope bwd", 0, [&] { inner_.rope_backward(dqkv, cos, sin, B, T, pos0, KV, g, hd); });
  }
  // As attention_forward/backward, over H = KV * g query heads.
  void attention_gqa_forward(float* out, float* lse, const float* qkv, int B, int T, int KV, int g,
                             int hd) override {
    timed("attention fwd", 2.0 * B * KV * g * T * T * hd,
          [&] { inner_.attention_gqa_forward(out, lse, qkv, B, T, KV, g, hd); });
  }
  void attention_gqa_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                              const float* lse, int B, int T, int KV, int g, int hd) override {
    timed("attention bwd", 4.0 * B * KV * g * T * T * hd,
          [&] { inner_.attention_gqa_backward(dqkv, dout, qkv, out, lse, B, T, KV, g, hd); });
  }
  void kv_cache_append_gqa(float* k_cache, float* v_cache, const float* qkv, int pos0, int Tq,
                           int KV, int g, int hd, int max_seq) override {
    inner_.kv_cache_append_gqa(k_cache, v_cache, qkv, pos0, Tq, KV, g, hd, max_seq);
  }
  void attention_decode_gqa(float* out, const float* qkv, const float* k_cache,
                            const float* v_cache, int pos0, int Tq, int KV, int g, int hd,
                            int max_seq) override {
    inner_.attention_decode_gqa(out, qkv, k_cache, v_cache, pos0, Tq, KV, g, hd, max_seq);
  }

  void gelu_forward(float* out, const float* inp, size_t n) override {
    timed("gelu fwd", 0, [&] { inner_.gelu_forward(out, inp, n); });
  }
  void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    timed("gelu bwd", 0, [&] { inner_.gelu_backward(dinp, inp, dout, n); });
  }

  void swiglu_forward(float* out, const float* gu, int N, int F) override {
    timed("swiglu fwd", 0, [&] { inner_.swiglu_forward(out, gu, N, F); });
  }
  void swiglu_backward(float* dgu, const float* gu, const float* dout, int N, int F) override {
    timed("swiglu bwd", 0, [&] { inner_.swiglu_backward(dgu, gu, dout, N, F); });
  }

  void add(float* out, const float* a, const float* b, size_t n) override {
    timed("residual add", 0, [&] { inner_.add(out, a, b, n); });
  }
  void add_inplace(float* acc, const float* x, size_t n) override {
    timed("residual add", 0, [&] { inner_.add_inplace(acc, x, n); });
  }
  void scale_inplace(float* x, float s, size_t n) override {
    timed("scale", 0, [&] { inner_.scale_inplace(x, s, n); });
  }

  void xent_row_max(float* row_max, const float* logits, int N, int Vl, int vocab_start,
                    int vocab_size) override {
    timed("cross-entropy fwd", 0,
          [&] { inner_.xent_row_max(row_max, logits, N, Vl, vocab_start, vocab_size); });
  }
  void xent_partial_sums(float* sum_exp, float* target_logit, const float* logits,
                         const float* row_max, const int32_t* targets, int N, int Vl,
                         int vocab_start, int vocab_size) override {
    timed("cross-entropy fwd", 0, [&] {
      inner_.xent_partial_sums(sum_exp, target_logit, logits, row_max, targets, N, Vl, vocab_start,
                               vocab_size);
    });
  }
  void xent_loss(float* losses, const float* row_max, const float* sum_exp,
                 const float* target_logit, int N) override {
    timed("cross-entropy fwd", 0,
          [&] { inner_.xent_loss(losses, row_max, sum_exp, target_logit, N); });
  }
  void xent_backward(float* dlogits, const float* logits, const float* row_max,
                     const float* sum_exp, const int32_t* targets, float dloss, int N, int Vl,
                     int vocab_start, int vocab_size) override {
    timed("cross-entropy bwd", 0, [&] {
      inner_.xent_backward(dlogits, logits, row_max, sum_exp, targets, dloss, N, Vl, vocab_start,
                           vocab_size);
    });
  }

  double sum_squares(const float* x, size_t n) override {
    double result = 0.0;
    timed("grad norm", 0, [&] { result = inner_.sum_squares(x, n); });
    return result;
  }
  void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                    int step) override {
    timed("adamw", 0, [&] {
      inner_.adamw_update(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale,
                          step);
    });
  }

 private:
  template <class Fn>
  void timed(const std::string& family, double flops, Fn&& fn) {
    if (!enabled) {
      fn();
      return;
    }
    const double start = shardlm::monotonic_seconds(), cpu_start = shardlm::process_cpu_seconds();
    fn();
    OpStats& s = stats_[family];
    s.seconds += shardlm::monotonic_seconds() - start;
    s.cpu_seconds += shardlm::process_cpu_seconds() - cpu_start;
    s.flops += flops;
    ++s.calls;
  }

  // The GPT-2 linear layer a matmul with these shapes is (tp = 1).
  std::string matmul_layer(int C, int OC) const {
    const int E = cfg_.n_embd;
    if (C == E && OC == 3 * E) return "qkv";
    if (C == E && OC == E) return "attn proj";
    if (C == E && OC == 4 * E) return "fc";
    if (C == 4 * E && OC == E) return "fc proj";
    if (C == E && OC == cfg_.padded_vocab()) return "lm head";
    return std::to_string(C) + "->" + std::to_string(OC);
  }

  KernelBackend& inner_;
  shardlm::ModelConfig cfg_;
  std::map<std::string, OpStats> stats_;
};

double gflops(const OpStats& s) {
  return s.seconds > 0.0 ? s.flops / s.seconds * 1e-9 : 0.0;
}

// Attention's rate as a share of the linear layers' GEMM rate (issue 17's yardstick: >= 50%).
void print_attention_vs_gemm(const std::map<std::string, OpStats>& stats, const OpStats& matmul) {
  const auto find = [&](const char* name) {
    const auto it = stats.find(name);
    return it == stats.end() ? OpStats{} : it->second;
  };
  const OpStats fwd = find("attention fwd"), bwd = find("attention bwd");
  const OpStats both{fwd.seconds + bwd.seconds, 0.0, fwd.flops + bwd.flops, 0};
  const double gemm = gflops(matmul);
  if (gemm <= 0.0 || both.seconds <= 0.0) return;
  std::printf(
      "attention vs GEMM: attention %.1f GFLOP/s (fwd %.1f, bwd %.1f), matmul %.1f GFLOP/s: "
      "%.0f%% (fwd %.0f%%, bwd %.0f%%)\n",
      gflops(both), gflops(fwd), gflops(bwd), gemm, 100.0 * gflops(both) / gemm,
      100.0 * gflops(fwd) / gemm, 100.0 * gflops(bwd) / gemm);
}

// Wall time per op family, and CPU time / threads: on a shared machine the wall time includes
// time the threads were descheduled, the CPU time mostly does not (spinning threads count).
void print_breakdown(const std::map<std::string, OpStats>& stats, double total_seconds,
                     double total_cpu_seconds, int steps, int threads) {
  std::vector<std::pair<std::string, OpStats>> rows(stats.begin(), stats.end());
  OpStats kernels, matmul_fwd, matmul_bwd;
  for (const auto& [name, s] : rows) {
    for (OpStats* sum : {&kernels, name.rfind("matmul fwd", 0) == 0   ? &matmul_fwd
                                   : name.rfind("matmul bwd", 0) == 0 ? &matmul_bwd
                                                                      : nullptr}) {
      if (sum == nullptr) continue;
      sum->seconds += s.seconds;
      sum->cpu_seconds += s.cpu_seconds;
      sum->flops += s.flops;
      sum->calls += s.calls;
    }
  }
  rows.emplace_back("outside kernels", OpStats{total_seconds - kernels.seconds,
                                               total_cpu_seconds - kernels.cpu_seconds, 0.0, 0});
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  rows.emplace_back("matmul fwd (all)", matmul_fwd);
  rows.emplace_back("matmul bwd (all)", matmul_bwd);
  std::printf("\nper-op time (mean over %d steps; cpu = process CPU time / %d threads):\n", steps,
              threads);
  std::printf("  %-22s %9s %7s %9s %7s %6s %9s %9s\n", "op family", "wall ms", "wall %", "cpu ms",
              "cpu %", "calls", "GFLOP/s", "cpu GF/s");
  for (const auto& [name, s] : rows) {
    const double cpu = s.cpu_seconds / threads;
    std::printf("  %-22s %9.2f %6.1f%% %9.2f %6.1f%% %6ld", name.c_str(), 1e3 * s.seconds / steps,
                100.0 * s.seconds / total_seconds, 1e3 * cpu / steps,
                100.0 * s.cpu_seconds / total_cpu_seconds, s.calls / steps);
    if (s.flops > 0.0 && s.seconds > 0.0 && cpu > 0.0)
      std::printf(" %9.1f %9.1f", s.flops / s.seconds * 1e-9, s.flops / cpu * 1e-9);
    std::printf("\n");
  }
  const OpStats matmul{matmul_fwd.seconds + matmul_bwd.seconds, 0.0,
                       matmul_fwd.flops + matmul_bwd.flops, 0};
  print_attention_vs_gemm(stats, matmul);
}

int run(const Options& o) {
  const int threads = omp_get_max_threads();
  shardlm::TrainSettings settings;
  settings.model = shardlm::model_preset(o.model);
  settings.micro_batch = o.micro_batch;
  settings.seq_len = o.seq_len;
  settings.optim.total_steps = o.warmup_steps + o.steps;
  const shardlm::ModelConfig& cfg = settings.model;

  double peak = o.peak_gflops;
  if (peak <= 0.0) {
    // Per-CPU-second rate: the machine's peak even while other processes share the cores.
    peak = shardlm::cpu::measure_fma_peak(0.05, 20).cpu_gflops;
  }

  std::printf(
      "config: model=%s family=%s n_layer=%d n_head=%d n_kv_head=%d n_embd=%d intermediate_size=%d "
      "vocab_size=%d padded_vocab=%d max_seq_len=%d rope_theta=%.17g norm_eps=%.17g "
      "tie_embeddings=%d seq_len=%d micro_batch=%d threads=%d isa=%s gemm_isa=%s\n",
      o.model.c_str(), cfg.family.c_str(), cfg.n_layer, cfg.n_head, cfg.kv_heads(), cfg.n_embd,
      cfg.intermediate_size, cfg.vocab_size, cfg.padded_vocab(), cfg.max_seq_len, cfg.rope_theta,
      cfg.norm_eps, cfg.tie_embeddings, o.seq_len, o.micro_batch, threads,
      shardlm::cpu::cpu_isa_name(shardlm::cpu::running_cpu_isa()), shardlm::cpu::gemm_isa_name());

  TimingBackend backend(shardlm::cpu_backend(), cfg);
  std::unique_ptr<shardlm::Mesh> mesh = shardlm::Mesh::single_process();
  shardlm::Trainer trainer(settings, *mesh, backend);

  const int T = o.seq_len;
  const shardlm::BatchSource data = [&](uint64_t first, int count, int32_t* tokens,
                                        int32_t* targets) {
    shardlm::synthetic_samples(1234, cfg.vocab_size, T, first, count, tokens, targets);
  };

  for (int s = 0; s < o.warmup_steps; ++s) trainer.train_step(s, data);
  backend.enabled = true;
  std::vector<double> step_seconds;
  double loss = 0.0;
  const double cpu_start = shardlm::process_cpu_seconds(), start = shardlm::monotonic_seconds();
  for (int s = 0; s < o.steps; ++s) {
    const double t0 = shardlm::monotonic_seconds();
    loss = trainer.train_step(o.warmup_steps + s, data).loss;
    step_seconds.push_back(shardlm::monotonic_seconds() - t0);
  }
  const double total = shardlm::monotonic_seconds() - start,
               cpu_used = shardlm::process_cpu_seconds() - cpu_start;
  backend.enabled = false;

  const double tokens_per_step = static_cast<double>(trainer.samples_per_step()) * T;
  const double flops_per_token = shardlm::model_family(cfg.family).flops_per_token(cfg, T);
  const double tokens_per_s = tokens_per_step * o.steps / total;
  const double best_tokens_per_s =
      tokens_per_step / *std::min_element(step_seconds.begin(), step_seconds.end());
  const double gflops = tokens_per_s * flops_per_token * 1e-9;
  std::printf(
      "steps: %d timed after %d warm-up, %.0f tokens each, mean %.1f ms, best %.1f ms, last loss "
      "%.4f\n",
      o.steps, o.warmup_steps, tokens_per_step, 1e3 * total / o.steps,
      1e3 * *std::min_element(step_seconds.begin(), step_seconds.end()), loss);
  // Throughput per CPU-second of `threads` threads: what a quiet machine would give, roughly
  // (threads that spin while waiting count as busy), on a machine others are using.
  const double cpu_tokens_per_s = tokens_per_step * o.steps / (cpu_used / threads);
  const double cpu_share = cpu_used / (total * threads);
  std::printf(
      "CPU time used: %.0f%% of %d threads x wall%s; tokens per CPU-second x threads %.1f\n",
      100.0 * cpu_share, threads,
      cpu_share < 0.9 ? " (the cores were shared: wall-clock figures are low)" : "",
      cpu_tokens_per_s);
  std::printf(
      "tokens/s %.1f (best step %.1f) | model GFLOP/s %.1f (%.3g GFLOP/token) | %.1f%% of %.1f "
      "GFLOP/s peak%s\n",
      tokens_per_s, best_tokens_per_s, gflops, flops_per_token * 1e-9, 100.0 * gflops / peak, peak,
      o.peak_gflops > 0.0 ? " (given)" : " (FMA loop, measured)");
  std::printf(
      "result: tokens_per_s=%.2f best_tokens_per_s=%.2f cpu_tokens_per_s=%.2f gflops=%.2f "
      "peak_gflops=%.2f pct_peak=%.2f flops_per_token=%.6g step_ms=%.2f\n",
      tokens_per_s, best_tokens_per_s, cpu_tokens_per_s, gflops, peak, 100.0 * gflops / peak,
      flops_per_token, 1e3 * total / o.steps);
  print_breakdown(backend.stats(), total, cpu_used, o.steps, threads);
  // Weights, gradients, optimizer state and every activation the stage keeps for backward.
  std::printf("backend memory: %.1f MiB peak\n", backend.memory().peak().total / 1048576.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::optional<Options> options = parse_options(argc, argv);
    return options ? run(*options) : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
}
