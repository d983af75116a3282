// Google Benchmark micro-benchmarks of the CPU backend's non-GEMM kernels at the "mini"
// model's training shapes (B=8, T=256, C=384, NH=6, padded vocab 8192).
//   usage: bench_kernels [--benchmark_filter=REGEX] [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>

#include "kernels/backend.h"
#include "model/config.h"

namespace {

using shardlm::KernelBackend;

KernelBackend& be() {
  return shardlm::cpu_backend();
}

struct MiniShapes {
  int B = 8, T = 256, C, NH, hd, V, Vp, N;
  size_t params;
  MiniShapes() {
    const shardlm::ModelConfig cfg = shardlm::model_preset("mini");
    C = cfg.n_embd;
    NH = cfg.n_head;
    hd = cfg.head_dim();
    V = cfg.vocab_size;
    Vp = cfg.padded_vocab();
    N = B * T;
    params = static_cast<size_t>(cfg.num_parameters());
  }
};

const MiniShapes& shapes() {
  static const MiniShapes s;
  return s;
}

// A backend buffer of n floats, uniform in [lo, hi), freed at scope exit.
class Buffer {
 public:
  explicit Buffer(size_t n, float lo = -1.0f, float hi = 1.0f, uint32_t seed = 1)
      : data_(be().alloc_floats(n)) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    for (size_t i = 0; i < n; ++i) data_[i] = dist(rng);
  }
  ~Buffer() { be().free_memory(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* get() const { return data_; }

 private:
  float* data_;
};

void set_rate(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] =
      benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_LayerNormForward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer out(size_t(s.N) * s.C), mean(s.N), rstd(s.N), inp(size_t(s.N) * s.C), w(s.C), b(s.C);
  for (auto _ : state)
    be().layernorm_forward(out.get(), mean.get(), rstd.get(), inp.get(), w.get(), b.get(), s.N,
                           s.C);
  set_rate(state, "tokens/s", s.N);
}

void BM_LayerNormBackward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer out(size_t(s.N) * s.C), mean(s.N), rstd(s.N), inp(size_t(s.N) * s.C), w(s.C), b(s.C);
  Buffer dinp(size_t(s.N) * s.C), dw(s.C), db(s.C), dout(size_t(s.N) * s.C);
  be().layernorm_forward(out.get(), mean.get(), rstd.get(), inp.get(), w.get(), b.get(), s.N, s.C);
  for (auto _ : state)
    be().layernorm_backward(dinp.get(), dw.get(), db.get(), dout.get(), inp.get(), w.get(),
                            mean.get(), rstd.get(), s.N, s.C);
  set_rate(state, "tokens/s", s.N);
}

// Causal attention: Q K^T and P V over the lower triangle, 2 flops per multiply-add.
double attention_forward_flops(const MiniShapes& s) {
  return 2.0 * 2.0 * s.B * s.NH * (s.T * (s.T + 1.0) / 2.0) * s.hd;
}

void BM_AttentionForward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer out(size_t(s.N) * s.C), att(size_t(s.B) * s.NH * s.T * s.T), qkv(size_t(s.N) * 3 * s.C);
  for (auto _ : state)
    be().attention_forward(out.get(), att.get(), qkv.get(), s.B, s.T, s.NH, s.hd);
  set_rate(state, "FLOP/s", attention_forward_flops(s));
  set_rate(state, "tokens/s", s.N);
}

void BM_AttentionBackward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer out(size_t(s.N) * s.C), att(size_t(s.B) * s.NH * s.T * s.T), qkv(size_t(s.N) * 3 * s.C);
  Buffer dqkv(size_t(s.N) * 3 * s.C), scratch(size_t(s.B) * s.NH * s.T * s.T),
      dout(size_t(s.N) * s.C);
  be().attention_forward(out.get(), att.get(), qkv.get(), s.B, s.T, s.NH, s.hd);
  for (auto _ : state)
    be().attention_backward(dqkv.get(), scratch.get(), dout.get(), qkv.get(), att.get(), s.B, s.T,
                            s.NH, s.hd);
  set_rate(state, "FLOP/s", 2.0 * attention_forward_flops(s));  // four products instead of two
  set_rate(state, "tokens/s", s.N);
}

// Grouped-query attention at the same size: H = NH query heads in KV = NH / g groups
// (state.range(0) = g; g = 1 is the multi-head case in the grouped layout).
void BM_AttentionGqaForward(benchmark::State& state) {
  const auto& s = shapes();
  const int g = static_cast<int>(state.range(0)), KV = s.NH / g;
  const size_t row = size_t(KV) * (g + 2) * s.hd;
  Buffer out(size_t(s.N) * s.C), att(size_t(s.B) * s.NH * s.T * s.T), qkv(size_t(s.N) * row);
  for (auto _ : state)
    be().attention_gqa_forward(out.get(), att.get(), qkv.get(), s.B, s.T, KV, g, s.hd);
  set_rate(state, "FLOP/s", attention_forward_flops(s));
  set_rate(state, "tokens/s", s.N);
}

void BM_AttentionGqaBackward(benchmark::State& state) {
  const auto& s = shapes();
  const int g = static_cast<int>(state.range(0)), KV = s.NH / g;
  const size_t row = size_t(KV) * (g + 2) * s.hd;
  Buffer out(size_t(s.N) * s.C), att(size_t(s.B) * s.NH * s.T * s.T), qkv(size_t(s.N) * row);
  Buffer dqkv(size_t(s.N) * row), scratch(size_t(s.B) * s.NH * s.T * s.T), dout(size_t(s.N) * s.C);
  be().attention_gqa_forward(out.get(), att.get(), qkv.get(), s.B, s.T, KV, g, s.hd);
  for (auto _ : state)
    be().attention_gqa_backward(dqkv.get(), scratch.get(), dout.get(), qkv.get(), att.get(), s.B,
                                s.T, KV, g, s.hd);
  set_rate(state, "FLOP/s", 2.0 * attention_forward_flops(s));
  set_rate(state, "tokens/s", s.N);
}

void BM_RmsNormForward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer out(size_t(s.N) * s.C), rstd(s.N), inp(size_t(s.N) * s.C), w(s.C);
  for (auto _ : state)
    be().rmsnorm_forward(out.get(), rstd.get(), inp.get(), w.get(), s.N, s.C, 1e-5f);
  set_rate(state, "tokens/s", s.N);
}

void BM_RmsNormBackward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer out(size_t(s.N) * s.C), rstd(s.N), inp(size_t(s.N) * s.C), w(s.C);
  Buffer dinp(size_t(s.N) * s.C), dw(s.C), dout(size_t(s.N) * s.C);
  be().rmsnorm_forward(out.get(), rstd.get(), inp.get(), w.get(), s.N, s.C, 1e-5f);
  for (auto _ : state)
    be().rmsnorm_backward(dinp.get(), dw.get(), dout.get(), inp.get(), w.get(), rstd.get(), s.N,
                          s.C);
  set_rate(state, "tokens/s", s.N);
}

// SwiGLU over a 4C hidden width (as GELU's MLP above).
void BM_SwigluForward(benchmark::State& state) {
  const auto& s = shapes();
  const int F = 4 * s.C;
  Buffer out(size_t(s.N) * F), gu(size_t(s.N) * 2 * F, -4.0f, 4.0f);
  for (auto _ : state) be().swiglu_forward(out.get(), gu.get(), s.N, F);
  set_rate(state, "elements/s", double(s.N) * F);
}

void BM_SwigluBackward(benchmark::State& state) {
  const auto& s = shapes();
  const int F = 4 * s.C;
  Buffer dgu(size_t(s.N) * 2 * F), gu(size_t(s.N) * 2 * F, -4.0f, 4.0f), dout(size_t(s.N) * F);
  for (auto _ : state) be().swiglu_backward(dgu.get(), gu.get(), dout.get(), s.N, F);
  set_rate(state, "elements/s", double(s.N) * F);
}

// RoPE on the query and key heads of GQA rows (g = 3), as the forward applies it.
void BM_RopeForward(benchmark::State& state) {
  const auto& s = shapes();
  const int g = 3, KV = s.NH / g;
  Buffer qkv(size_t(s.N) * KV * (g + 2) * s.hd), cos(size_t(s.T) * s.hd / 2),
      sin(size_t(s.T) * s.hd / 2);
  for (auto _ : state) be().rope_forward(qkv.get(), cos.get(), sin.get(), s.B, s.T, 0, KV, g, s.hd);
  set_rate(state, "tokens/s", s.N);
}

void BM_GeluForward(benchmark::State& state) {
  const auto& s = shapes();
  const size_t n = size_t(s.N) * 4 * s.C;
  Buffer out(n), inp(n, -4.0f, 4.0f);
  for (auto _ : state) be().gelu_forward(out.get(), inp.get(), n);
  set_rate(state, "elements/s", double(n));
}

void BM_GeluBackward(benchmark::State& state) {
  const auto& s = shapes();
  const size_t n = size_t(s.N) * 4 * s.C;
  Buffer dinp(n), inp(n, -4.0f, 4.0f), dout(n);
  for (auto _ : state) be().gelu_backward(dinp.get(), inp.get(), dout.get(), n);
  set_rate(state, "elements/s", double(n));
}

std::vector<int32_t> targets(const MiniShapes& s) {
  std::vector<int32_t> t(s.N);
  for (int n = 0; n < s.N; ++n) t[n] = (n * 7919) % s.V;
  return t;
}

// Steps 1-3 (row max, partial sums, loss) over the padded vocabulary at tp = 1.
void BM_CrossEntropyForward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer logits(size_t(s.N) * s.Vp, -5.0f, 5.0f), row_max(s.N), sum_exp(s.N), target_logit(s.N),
      losses(s.N);
  const std::vector<int32_t> tgt = targets(s);
  for (auto _ : state) {
    be().xent_row_max(row_max.get(), logits.get(), s.N, s.Vp, 0, s.V);
    be().xent_partial_sums(sum_exp.get(), target_logit.get(), logits.get(), row_max.get(),
                           tgt.data(), s.N, s.Vp, 0, s.V);
    be().xent_loss(losses.get(), row_max.get(), sum_exp.get(), target_logit.get(), s.N);
  }
  set_rate(state, "tokens/s", s.N);
}

// Step 4, in place (dlogits == logits) as the model runs it.
void BM_CrossEntropyBackward(benchmark::State& state) {
  const auto& s = shapes();
  Buffer logits(size_t(s.N) * s.Vp, -5.0f, 5.0f), row_max(s.N), sum_exp(s.N), target_logit(s.N);
  const std::vector<int32_t> tgt = targets(s);
  be().xent_row_max(row_max.get(), logits.get(), s.N, s.Vp, 0, s.V);
  be().xent_partial_sums(sum_exp.get(), target_logit.get(), logits.get(), row_max.get(), tgt.data(),
                         s.N, s.Vp, 0, s.V);
  Buffer work(size_t(s.N) * s.Vp);
  for (auto _ : state) {
    state.PauseTiming();
    be().copy(work.get(), logits.get(), sizeof(float) * s.N * s.Vp);
    state.ResumeTiming();
    be().xent_backward(work.get(), work.get(), row_max.get(), sum_exp.get(), tgt.data(), 1.0f / s.N,
                       s.N, s.Vp, 0, s.V);
  }
  set_rate(state, "tokens/s", s.N);
}

void BM_AdamW(benchmark::State& state) {
  const size_t n = shapes().params;
  Buffer param(n), grad(n), m(n), v(n, 0.0f, 1e-3f);
  int step = 1;
  for (auto _ : state)
    be().adamw_update(param.get(), grad.get(), m.get(), v.get(), n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f,
                      1.0f, step++);
  set_rate(state, "params/s", double(n));
}

void BM_SumSquares(benchmark::State& state) {
  const size_t n = shapes().params;
  Buffer grad(n);
  for (auto _ : state) benchmark::DoNotOptimize(be().sum_squares(grad.get(), n));
  set_rate(state, "params/s", double(n));
}

// Real time, not CPU time: the kernels run on all OpenMP threads.
BENCHMARK(BM_LayerNormForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LayerNormBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AttentionForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionBackward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionGqaForward)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionGqaBackward)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RmsNormForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RmsNormBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SwigluForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SwigluBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RopeForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_GeluForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_GeluBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CrossEntropyForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CrossEntropyBackward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AdamW)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SumSquares)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
