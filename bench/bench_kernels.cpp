// Google Benchmark micro-benchmarks of the CPU backend's non-GEMM kernels at the "mini"
// model's training shapes (B=8, T=256, C=384, NH=6, padded vocab 8192).
//   usage: bench_kernels [--benchmark_filter=REGEX] [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

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
  set_rate(state, "bytes/s", 2.0 * 4 * s.N * s.C);  // inp read, out written
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
  set_rate(state, "bytes/s", 4.0 * 4 * s.N * s.C);  // dout, inp read; dinp read and written
}

// Causal attention at the mini model's heads (NH = 6, hd = 64) over 2048 tokens: state.range(0)
// = T (256: B = 8, as in training; 1024: B = 2), state.range(1) = g (query heads per key/value
// head; g = 1 is multi-head attention, through attention_forward when range(2) = 0 and through
// the grouped layout otherwise).
struct AttentionShape {
  int B, T, NH, hd, g, KV;
  size_t qkv_row;
  explicit AttentionShape(const benchmark::State& state)
      : T(static_cast<int>(state.range(0))),
        NH(shapes().NH),
        hd(shapes().hd),
        g(static_cast<int>(state.range(1))) {
    B = 2048 / T;
    KV = NH / g;
    qkv_row = static_cast<size_t>(KV) * (g + 2) * hd;
  }
  size_t N() const { return static_cast<size_t>(B) * T; }
  // Q K^T and P V over the lower triangle, 2 flops per multiply-add.
  double forward_flops() const { return 2.0 * 2.0 * B * NH * (T * (T + 1.0) / 2.0) * hd; }
};

void attention_forward(const AttentionShape& a, bool grouped, float* out, float* lse,
                       const float* qkv) {
  if (grouped)
    be().attention_gqa_forward(out, lse, qkv, a.B, a.T, a.KV, a.g, a.hd);
  else
    be().attention_forward(out, lse, qkv, a.B, a.T, a.NH, a.hd);
}

void BM_AttentionForward(benchmark::State& state) {
  const AttentionShape a(state);
  const bool grouped = state.range(2) != 0;
  Buffer out(a.N() * a.NH * a.hd), lse(size_t(a.B) * a.NH * a.T), qkv(a.N() * a.qkv_row);
  for (auto _ : state) attention_forward(a, grouped, out.get(), lse.get(), qkv.get());
  set_rate(state, "FLOP/s", a.forward_flops());
  set_rate(state, "tokens/s", double(a.N()));
}

void BM_AttentionBackward(benchmark::State& state) {
  const AttentionShape a(state);
  const bool grouped = state.range(2) != 0;
  Buffer out(a.N() * a.NH * a.hd), lse(size_t(a.B) * a.NH * a.T), qkv(a.N() * a.qkv_row);
  Buffer dqkv(a.N() * a.qkv_row), dout(a.N() * a.NH * a.hd);
  attention_forward(a, grouped, out.get(), lse.get(), qkv.get());
  for (auto _ : state) {
    if (grouped)
      be().attention_gqa_backward(dqkv.get(), dout.get(), qkv.get(), out.get(), lse.get(), a.B, a.T,
                                  a.KV, a.g, a.hd);
    else
      be().attention_backward(dqkv.get(), dout.get(), qkv.get(), out.get(), lse.get(), a.B, a.T,
                              a.NH, a.hd);
  }
  set_rate(state, "FLOP/s", 2.0 * a.forward_flops());  // four products instead of two
  set_rate(state, "tokens/s", double(a.N()));
}

// The GEMM rate the attention is held against: the linear layers' oneDNN sgemm at the mini
// model's shapes (state.range(0) = OC: 1152 = qkv, 1536 = MLP up-projection; N = 2048, C = 384).
void BM_Gemm(benchmark::State& state) {
  const auto& s = shapes();
  const int OC = static_cast<int>(state.range(0));
  Buffer out(size_t(s.N) * OC), inp(size_t(s.N) * s.C), w(size_t(OC) * s.C);
  for (auto _ : state) be().matmul_forward(out.get(), inp.get(), w.get(), nullptr, s.N, s.C, OC);
  set_rate(state, "FLOP/s", 2.0 * s.N * s.C * OC);
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

// The memory-speed yardstick of the elementwise kernels: STREAM's copy over all OpenMP threads
// at GELU's size (one stream read, one written), in bytes moved per second.
void BM_StreamCopy(benchmark::State& state) {
  const size_t n = size_t(shapes().N) * 4 * shapes().C;
  Buffer dst(n), src(n);
  float* d = dst.get();
  const float* x = src.get();
  for (auto _ : state) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) d[i] = x[i];
    benchmark::ClobberMemory();
  }
  set_rate(state, "bytes/s", 2.0 * 4 * n);
}

// A residual add (two streams read, one written).
void BM_ResidualAdd(benchmark::State& state) {
  const auto& s = shapes();
  const size_t n = size_t(s.N) * s.C;
  Buffer out(n), a(n), b(n);
  for (auto _ : state) be().add(out.get(), a.get(), b.get(), n);
  set_rate(state, "bytes/s", 3.0 * 4 * n);
}

void BM_GeluForward(benchmark::State& state) {
  const auto& s = shapes();
  const size_t n = size_t(s.N) * 4 * s.C;
  Buffer out(n), inp(n, -4.0f, 4.0f);
  for (auto _ : state) be().gelu_forward(out.get(), inp.get(), n);
  set_rate(state, "elements/s", double(n));
  set_rate(state, "bytes/s", 2.0 * 4 * n);
}

void BM_GeluBackward(benchmark::State& state) {
  const auto& s = shapes();
  const size_t n = size_t(s.N) * 4 * s.C;
  Buffer dinp(n), inp(n, -4.0f, 4.0f), dout(n);
  for (auto _ : state) be().gelu_backward(dinp.get(), inp.get(), dout.get(), n);
  set_rate(state, "elements/s", double(n));
  set_rate(state, "bytes/s", 3.0 * 4 * n);
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
  set_rate(state, "bytes/s", 4.0 * s.N * s.Vp);  // the logits, once (the minimum)
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
  set_rate(state, "bytes/s", 2.0 * 4 * s.N * s.Vp);  // logits read, dlogits written
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
// {T, g, grouped layout}: multi-head at T = 256 and 1024, grouped-query (g = 3) at both.
const std::vector<std::vector<int64_t>> kAttentionArgs = {
    {256, 1, 0}, {1024, 1, 0}, {256, 3, 1}, {1024, 3, 1}};
void attention_args(benchmark::internal::Benchmark* b) {
  for (const auto& args : kAttentionArgs) b->Args(args);
  b->ArgNames({"T", "g", "gqa"});
}
BENCHMARK(BM_Gemm)
    ->Arg(1152)
    ->Arg(1536)
    ->ArgName("OC")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_AttentionForward)->Apply(attention_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionBackward)
    ->Apply(attention_args)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_RmsNormForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RmsNormBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SwigluForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SwigluBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RopeForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_StreamCopy)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ResidualAdd)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_GeluForward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_GeluBackward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CrossEntropyForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CrossEntropyBackward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AdamW)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SumSquares)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
